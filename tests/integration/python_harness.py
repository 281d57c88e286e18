"""What the python_*_test.py scripts share: grpcio stubs generated from
proto/ at test time, llmesh service binaries as child processes on ephemeral
127.0.0.1 ports, and the command line CTest runs them with (CMakeLists.txt)."""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

ARGS = None  # --bin-dir, --proto-dir, --shared-dir: set by main()


def generate_stubs(proto_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    protos = [os.path.join(root, f) for root, _, files in os.walk(proto_dir) for f in files
              if f.endswith(".proto")]
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out_dir}",
                    f"--grpc_out={out_dir}", "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    *protos], check=True)
    # protoc does not write packages' __init__.py; Python 3 namespace packages cope.
    sys.path.insert(0, out_dir)
    # grpc.health / grpc.reflection live under grpcio's own `grpc` package,
    # which Debian ships without them: let the package find ours too.
    import grpc
    grpc.__path__.append(os.path.join(out_dir, "grpc"))


def temp_dir_with_stubs():
    """A fresh temporary directory whose stubs/ are importable from now on."""
    tmp = tempfile.TemporaryDirectory()
    generate_stubs(ARGS.proto_dir, os.path.join(tmp.name, "stubs"))
    return tmp


def models_dir():
    return os.path.join(ARGS.shared_dir, "models")


class Service:
    """A service binary listening on an ephemeral 127.0.0.1 port, its log in `workdir`."""

    def __init__(self, binary, workdir, extra=()):
        self.port_file = os.path.join(workdir, binary + ".port")
        self.log = open(os.path.join(workdir, binary + ".log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(ARGS.bin_dir, binary), "--listen", "127.0.0.1:0", "--port-file", self.port_file,
             *extra], stdout=self.log, stderr=subprocess.STDOUT)
        self.address = f"127.0.0.1:{self._wait_port()}"

    def _wait_port(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    return int(text)
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited before writing {self.port_file}")
            time.sleep(0.02)
        raise RuntimeError(f"timed out waiting for {self.port_file}")

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
        code = self.proc.wait(timeout=30)
        self.log.close()
        return code


def main():
    """Runs the calling script's tests with the paths CTest passes."""
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--shared-dir", default="")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v", *rest])
