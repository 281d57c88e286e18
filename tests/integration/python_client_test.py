#!/usr/bin/env python3
"""Cross-language check: a Python grpcio client, with stubs generated from
proto/ at test time, talks to every llmesh service binary: health, the
services listed by server reflection, and a call on each service's own stub.
Run by CTest with Debian's python3 (python3-grpcio, python3-protobuf)."""
import time
import unittest

import python_harness as harness
from python_harness import Service


class PythonClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.temp_dir_with_stubs()

    def check_service(self, binary, full_name, call, extra=()):
        import grpc
        from grpc.health.v1 import health_pb2, health_pb2_grpc
        from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        svc = Service(binary, self.tmp.name, extra)
        try:
            channel = grpc.insecure_channel(svc.address)
            grpc.channel_ready_future(channel).result(timeout=10)
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.time() + 30
            while True:
                status = health.Check(health_pb2.HealthCheckRequest(service=full_name), timeout=5).status
                if status == health_pb2.HealthCheckResponse.SERVING or time.time() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(status, health_pb2.HealthCheckResponse.SERVING)

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            responses = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
            names = {s.name for r in responses for s in r.list_services_response.service}
            self.assertIn(full_name, names)
            self.assertIn("grpc.health.v1.Health", names)

            call(channel)
        finally:
            self.assertEqual(svc.stop(), 0, f"{binary} exit code")

    def expect_answer_or_unimplemented(self, fn):
        """The stub call reaches the server: any gRPC status but UNAVAILABLE is a
        real answer from the C++ service; RPCs later issues implement may still
        say UNIMPLEMENTED."""
        import grpc
        try:
            fn()
        except grpc.RpcError as e:
            self.assertNotEqual(e.code(), grpc.StatusCode.UNAVAILABLE, e.details())

    def test_tokenizer(self):
        from llmesh.v1 import tokenizer_pb2, tokenizer_pb2_grpc

        def call(ch):
            stub = tokenizer_pb2_grpc.TokenizerServiceStub(ch)
            ids = stub.Tokenize(tokenizer_pb2.TokenizeRequest(model="stories260K", text="Once upon a time",
                                                              add_special=True), timeout=5).token_ids
            self.assertEqual(list(ids), [1, 403, 407, 261, 378])
            info = stub.GetVocabInfo(tokenizer_pb2.GetVocabInfoRequest(model="stories260K"), timeout=5)
            self.assertEqual(info.n_vocab, 512)
        self.check_service("llmesh-tokenizer", "llmesh.v1.TokenizerService", call,
                           ["--model-dir", harness.models_dir()])

    def test_engine(self):
        from llmesh.v1 import common_pb2, engine_pb2, engine_pb2_grpc

        def call(ch):
            stub = engine_pb2_grpc.EngineServiceStub(ch)
            req = engine_pb2.GenerateRequest(model="stories260K", prompt_token_ids=[1, 403, 407, 261, 378],
                                             sampling=common_pb2.SamplingParams(temperature=0),
                                             stopping=common_pb2.StoppingCriteria(max_tokens=8))
            tokens, finish = [], None
            for resp in stub.Generate(req, timeout=30):
                tokens += [t.token_id for t in resp.tokens]
                if resp.finish_reason:
                    finish = resp.finish_reason
            # ../shared/models/README.md: the reference greedy continuation.
            self.assertEqual(tokens, [432, 383, 286, 261, 376, 298, 315, 421])
            self.assertEqual(finish, common_pb2.FINISH_REASON_LENGTH)
            self.assertGreaterEqual(stub.GetStats(engine_pb2.GetStatsRequest(), timeout=5).requests_total, 1)
        self.check_service("llmesh-engine", "llmesh.v1.EngineService", call,
                           ["--model-dir", harness.models_dir(), "--model", "stories260K", "--kv-budget-mb", "8"])

    def test_rag(self):
        from llmesh.v1 import rag_pb2, rag_pb2_grpc
        self.check_service("llmesh-rag", "llmesh.v1.RagService", lambda ch: self.expect_answer_or_unimplemented(
            lambda: rag_pb2_grpc.RagServiceStub(ch).ListCollections(rag_pb2.ListCollectionsRequest(), timeout=5)))

    def test_agent(self):
        from llmesh.v1 import agent_pb2, agent_pb2_grpc
        self.check_service("llmesh-agent", "llmesh.v1.AgentService", lambda ch: self.expect_answer_or_unimplemented(
            lambda: agent_pb2_grpc.AgentServiceStub(ch).ListTools(agent_pb2.ListToolsRequest(), timeout=5)))

    def test_gateway(self):
        from llmesh.v1 import gateway_pb2, gateway_pb2_grpc
        self.check_service("llmesh-gateway", "llmesh.v1.Gateway", lambda ch: self.expect_answer_or_unimplemented(
            lambda: gateway_pb2_grpc.GatewayStub(ch).ListModels(gateway_pb2.GatewayListModelsRequest(), timeout=5)),
            ["--http-listen", "127.0.0.1:0"])


if __name__ == "__main__":
    harness.main()
