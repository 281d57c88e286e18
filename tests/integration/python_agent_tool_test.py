#!/usr/bin/env python3
"""A remote tool written in Python: this process serves ToolService (grpcio,
stubs generated from proto/ at test time), registers it with a real
llmesh-agent (over llmesh-tokenizer and llmesh-engine with stories260K), and
an agent run calls it. The tool sees schema-valid JSON arguments; its output,
and its reported error, come back as TOOL_RESULT steps.
Run by CTest with Debian's python3 (python3-grpcio, python3-protobuf)."""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

ARGS = None


def generate_stubs(proto_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    protos = [os.path.join(root, f) for root, _, files in os.walk(proto_dir) for f in files
              if f.endswith(".proto")]
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out_dir}",
                    f"--grpc_out={out_dir}", "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    *protos], check=True)
    sys.path.insert(0, out_dir)
    import grpc
    grpc.__path__.append(os.path.join(out_dir, "grpc"))


class Service:
    def __init__(self, binary, workdir, extra=()):
        self.port_file = os.path.join(workdir, binary + ".port")
        self.log = open(os.path.join(workdir, binary + ".log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(ARGS.bin_dir, binary), "--listen", "127.0.0.1:0", "--port-file", self.port_file,
             *extra], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(self.port_file) or os.path.getsize(self.port_file) == 0:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{binary} did not start")
            time.sleep(0.02)
        time.sleep(0.05)
        with open(self.port_file) as f:
            self.address = f"127.0.0.1:{int(f.read())}"

    def wait_serving(self, service, timeout=30):
        import grpc
        from grpc.health.v1 import health_pb2, health_pb2_grpc
        channel = grpc.insecure_channel(self.address)
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{service} at {self.address} is not SERVING")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self.log.close()
        return code


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
        cls.tmp = tempfile.TemporaryDirectory()
        generate_stubs(ARGS.proto_dir, os.path.join(cls.tmp.name, "stubs"))
        from llmesh.v1 import agent_pb2_grpc, tokenizer_pb2, tokenizer_pb2_grpc

        models = os.path.join(ARGS.shared_dir, "models")
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--shared-dir", default="")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
