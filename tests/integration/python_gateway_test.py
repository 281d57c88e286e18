#!/usr/bin/env python3
"""Cross-language check of the public API: a Python grpcio client (stubs
generated from proto/ at test time) streams Chat and Generate through
llmesh-gateway, over a tokenizer and a self-registered engine worker running
stories260K. Run by CTest with Debian's python3 (python3-grpcio)."""
import os
import time
import unittest

import python_harness as harness
from python_harness import Service


class PythonGatewayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temp_dir_with_stubs()
        models = harness.models_dir()
        cls.procs = []
        tok = Service("llmesh-tokenizer", cls.tmp.name, ["--model-dir", models])
        cls.procs.append(tok)
        http_port_file = os.path.join(cls.tmp.name, "http.port")
        cls.gateway = Service("llmesh-gateway", cls.tmp.name,
                              ["--tokenizer", tok.address, "--http-listen", "127.0.0.1:0", "--http-port-file",
                               http_port_file, "--api-keys", "py-key", "--model", "stories260K",
                               "--health-interval", "200ms"])
        cls.procs.append(cls.gateway)
        cls.procs.append(Service("llmesh-engine", cls.tmp.name,
                                 ["--model-dir", models, "--model", "stories260K", "--threads", "1", "--kv-budget-mb",
                                  "16", "--gateway", cls.gateway.address]))
        import grpc
        from llmesh.v1 import gateway_pb2, gateway_pb2_grpc
        cls.channel = grpc.insecure_channel(cls.gateway.address)
        cls.stub = gateway_pb2_grpc.GatewayStub(cls.channel)
        cls.md = [("authorization", "Bearer py-key")]
        deadline = time.time() + 30
        while time.time() < deadline:
            models = cls.stub.ListModels(gateway_pb2.GatewayListModelsRequest(), metadata=cls.md, timeout=5).models
            if any(m.name == "stories260K" and m.workers == 1 for m in models):
                break
            time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            p.stop()
        cls.tmp.cleanup()

    def test_chat_streams(self):
        from llmesh.v1 import common_pb2, gateway_pb2
        req = gateway_pb2.ChatRequest(
            model="stories260K",
            messages=[common_pb2.ChatMessage(role="user", content="Once upon a time")],
            sampling=common_pb2.SamplingParams(temperature=0),
            stopping=common_pb2.StoppingCriteria(max_tokens=16))
        deltas, tokens, finish, usage = [], 0, None, None
        for resp in self.stub.Chat(req, metadata=self.md, timeout=30):
            deltas.append(resp.text_delta)
            tokens += len(resp.tokens)
            self.assertTrue(resp.request_id)
            if resp.finish_reason:
                finish, usage = resp.finish_reason, resp.usage
        self.assertGreater(len(deltas), 1)
        self.assertTrue("".join(deltas))
        self.assertEqual(tokens, 16)
        self.assertEqual(finish, common_pb2.FINISH_REASON_LENGTH)
        self.assertEqual(usage.completion_tokens, 16)

    def test_generate_greedy_text(self):
        from llmesh.v1 import common_pb2, gateway_pb2
        req = gateway_pb2.GatewayGenerateRequest(
            model="stories260K", prompt="Once upon a time", sampling=common_pb2.SamplingParams(temperature=0),
            stopping=common_pb2.StoppingCriteria(max_tokens=8))
        ids = [t.token_id for r in self.stub.Generate(req, metadata=self.md, timeout=30) for t in r.tokens]
        self.assertEqual(ids, [432, 383, 286, 261, 376, 298, 315, 421])

    def test_missing_key_is_unauthenticated(self):
        import grpc
        from llmesh.v1 import gateway_pb2
        with self.assertRaises(grpc.RpcError) as e:
            list(self.stub.Generate(gateway_pb2.GatewayGenerateRequest(prompt="x"), timeout=10))
        self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    harness.main()
