#!/usr/bin/env python3
"""A remote tool written in Python: this process serves ToolService (grpcio,
stubs generated from proto/ at test time), registers it with a real
llmesh-agent (over llmesh-tokenizer and llmesh-engine with stories260K), and
an agent run calls it. The tool sees schema-valid JSON arguments; its output,
and its reported error, come back as TOOL_RESULT steps.
Run by CTest with Debian's python3 (python3-grpcio, python3-protobuf)."""
import json
import os
import threading
import unittest
from concurrent import futures

import python_harness as harness
from python_harness import Service


def make_tool_servicer():
    from llmesh.v1 import agent_pb2, agent_pb2_grpc

    class Tools(agent_pb2_grpc.ToolServiceServicer):
        """word_count counts the words of `text`; broken always reports an error."""

        def __init__(self):
            self.calls = []
            self.lock = threading.Lock()

        def Describe(self, request, context):
            return agent_pb2.DescribeToolsResponse(tools=[
                agent_pb2.ToolSpec(
                    name="word_count", description="Counts the words in a text.",
                    parameters_json_schema=json.dumps({
                        "type": "object",
                        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 40}},
                        "required": ["text"], "additionalProperties": False})),
                agent_pb2.ToolSpec(
                    name="broken", description="Always fails.",
                    parameters_json_schema=json.dumps({"type": "object", "properties": {}, "additionalProperties": False})),
            ])

        def Call(self, request, context):
            with self.lock:
                self.calls.append((request.name, request.arguments_json, request.call_id))
            if request.name == "broken":
                return agent_pb2.ToolCallResponse(error="the python tool is broken on purpose")
            args = json.loads(request.arguments_json)
            return agent_pb2.ToolCallResponse(output=json.dumps({"words": len(args["text"].split())}))

    return Tools()


class PythonAgentToolTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import grpc
        cls.tmp = harness.temp_dir_with_stubs()
        from llmesh.v1 import agent_pb2_grpc, tokenizer_pb2, tokenizer_pb2_grpc

        models = harness.models_dir()
        cls.services = []
        cls.tokenizer = Service("llmesh-tokenizer", cls.tmp.name, ["--model-dir", models])
        cls.services.append(cls.tokenizer)
        cls.engine = Service("llmesh-engine", cls.tmp.name,
                             ["--model-dir", models, "--model", "stories260K", "--threads", "1",
                              "--kv-budget-mb", "16"])
        cls.services.append(cls.engine)
        cls.tokenizer.wait_serving("llmesh.v1.TokenizerService")
        cls.engine.wait_serving("llmesh.v1.EngineService")
        cls.agent = Service("llmesh-agent", cls.tmp.name,
                            ["--data-dir", os.path.join(cls.tmp.name, "agent"), "--engine", cls.engine.address,
                             "--tokenizer", cls.tokenizer.address, "--rag=", "--model", "stories260K"])
        cls.services.append(cls.agent)
        cls.agent.wait_serving("llmesh.v1.AgentService")

        cls.tools = make_tool_servicer()
        cls.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        agent_pb2_grpc.add_ToolServiceServicer_to_server(cls.tools, cls.server)
        cls.tool_port = cls.server.add_insecure_port("127.0.0.1:0")
        cls.server.start()

        cls.stub = agent_pb2_grpc.AgentServiceStub(grpc.insecure_channel(cls.agent.address))
        tok = tokenizer_pb2_grpc.TokenizerServiceStub(grpc.insecure_channel(cls.tokenizer.address))
        ids = tok.Tokenize(tokenizer_pb2.TokenizeRequest(model="stories260K", text='"'), timeout=10).token_ids
        cls.quote_id = ids[-1]

    @classmethod
    def tearDownClass(cls):
        cls.server.stop(grace=None)
        for svc in reversed(cls.services):
            svc.stop()
        cls.tmp.cleanup()

    def run_agent(self, tool, tools):
        from llmesh.v1 import agent_pb2, common_pb2
        req = agent_pb2.AgentRunRequest(
            input="How many words are in a short story?", tools=tools, tool_choice=tool,
            limits=agent_pb2.AgentLimits(max_steps=2, max_tokens=300),
            # The model is tiny (512-token context): bias the quote so its strings stay short.
            sampling=common_pb2.SamplingParams(seed=11, temperature=0.8, logit_bias={self.quote_id: 6.0}))
        return list(self.stub.Run(req, timeout=120))

    def test_python_tool_is_registered_and_called(self):
        from llmesh.v1 import agent_pb2
        spec = self.stub.RegisterTool(agent_pb2.RegisterToolRequest(
            address=f"127.0.0.1:{self.tool_port}", name="word_count"), timeout=10)
        self.assertEqual(spec.name, "word_count")
        names = [t.name for t in self.stub.ListTools(agent_pb2.ListToolsRequest(), timeout=10).tools]
        self.assertIn("word_count", names)
        self.assertNotIn("rag_search", names)  # this agent has no rag-svc

        steps = self.run_agent("word_count", ["word_count"])
        kinds = [s.kind for s in steps]
        self.assertEqual(kinds[-1], agent_pb2.AGENT_STEP_KIND_USAGE)
        self.assertIn(agent_pb2.AGENT_STEP_KIND_TOOL_CALL, kinds)

        calls = [c for c in self.tools.calls if c[0] == "word_count"]
        self.assertEqual(len(calls), 1)
        name, arguments, call_id = calls[0]
        args = json.loads(arguments)  # valid JSON, and valid against the schema:
        self.assertEqual(set(args), {"text"})
        self.assertIsInstance(args["text"], str)
        self.assertTrue(1 <= len(args["text"]) <= 40, args)
        self.assertEqual(call_id, "call_1")

        result = next(s for s in steps if s.kind == agent_pb2.AGENT_STEP_KIND_TOOL_RESULT)
        self.assertFalse(result.tool_error)
        self.assertEqual(json.loads(result.text), {"words": len(args["text"].split())})
        call = next(s for s in steps if s.kind == agent_pb2.AGENT_STEP_KIND_TOOL_CALL)
        self.assertEqual(json.loads(call.arguments_json), args)

    def test_python_tool_error_becomes_an_observation(self):
        from llmesh.v1 import agent_pb2
        self.stub.RegisterTool(agent_pb2.RegisterToolRequest(
            address=f"127.0.0.1:{self.tool_port}", name="broken"), timeout=10)
        steps = self.run_agent("broken", ["broken"])
        result = next(s for s in steps if s.kind == agent_pb2.AGENT_STEP_KIND_TOOL_RESULT)
        self.assertTrue(result.tool_error)
        self.assertEqual(result.text, "the python tool is broken on purpose")
        self.assertEqual(steps[-1].kind, agent_pb2.AGENT_STEP_KIND_USAGE)


if __name__ == "__main__":
    harness.main()
