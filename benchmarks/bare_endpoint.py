"""The baseline the benchmark compares the server with: a bare Starlette + ORT endpoint.

No validation, no errors, no logging: parse ``dataframe_split`` JSON, build one array per input,
run the session, return the labels.
``python benchmarks/bare_endpoint.py MODEL.onnx PORT [PARENT_PID]``: with PARENT_PID, it exits
when that process is gone (as the server's ``--parent-pid``).
"""

import sys

import numpy as np
import onnxruntime as ort
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

options = ort.SessionOptions()
options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
kinds = {i.name: np.float32 if i.type == "tensor(float)" else object for i in session.get_inputs()}


async def predict(request):
    table = orjson.loads(await request.body())["dataframe_split"]
    columns = zip(*table["data"], strict=True)
    feed = {name: np.asarray(values, dtype=kinds[name]).reshape(-1, 1)
            for name, values in zip(table["columns"], columns, strict=True)}
    labels = session.run(["label"], feed)[0]
    return Response(orjson.dumps({"predictions": labels.tolist()}), media_type="application/json")


async def ready(request):
    return Response(b'{"ready":true}', media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ready", ready)])

if __name__ == "__main__":
    if len(sys.argv) > 3:
        from server import parent

        parent.watch(int(sys.argv[3]))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), loop="uvloop", http="httptools",
                access_log=False, log_level="warning")
