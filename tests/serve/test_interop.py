"""The server's interfaces, against HF's texts (golden.json): KServe v2 REST, JSON bodies with
base64 images and per-request generation settings, multipart order, the OpenAPI document (every
documented route answers as documented) and the access log with request ids."""
import base64
import json
import time

import pytest

from conftest import (GOLDEN, expected_text, generate_cases, image_base64, image_bytes, multipart, serving)

NAMES = ["line_rgb.png", "wide.jpg", "tiny.png"]


def infer_request(names, **extra):
    return {"inputs": [{"name": "images", "shape": [len(names)], "datatype": "BYTES",
                        "data": [image_base64(n) for n in names]}], **extra}


def test_kserve_health_and_metadata(server):
    assert server.request("GET", "/v2/health/live")[:2] == (200, {"live": True})
    assert server.request("GET", "/v2/health/ready")[:2] == (200, {"ready": True})
    status, metadata, _ = server.request("GET", "/v2/models/trocr")
    assert status == 200 and metadata["name"] == "trocr" and metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in metadata["outputs"]] == ["text", "confidence", "score"]
    assert server.request("GET", "/v2/models/trocr/ready")[:2] == (200, {"name": "trocr", "ready": True})
    assert server.request("GET", "/v2/models/trocr/versions/1/ready")[0] == 200
    status, body, _ = server.request("GET", "/v2")
    assert status == 200 and body["name"] == "trocr-rt" and "version" in body
    status, body, _ = server.request("GET", "/v2/models/other")
    assert status == 404 and "other" in body["error"]
    assert server.request("GET", "/v2/models/trocr/versions/2")[0] == 404


def test_kserve_infer_gives_hf_texts(server):
    status, body, _ = server.post_json("/v2/models/trocr/infer", infer_request(NAMES, id="req-7"))
    assert status == 200, body
    assert body["model_name"] == "trocr" and body["id"] == "req-7"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["text"]["datatype"] == "BYTES" and outputs["text"]["shape"] == [3]
    assert outputs["text"]["data"] == [expected_text(n) for n in NAMES]
    assert outputs["confidence"]["datatype"] == "FP32" and all(0 < c <= 1 for c in outputs["confidence"]["data"])


def test_kserve_infer_shapes_outputs_and_settings(server):
    request = infer_request(NAMES[:2], outputs=[{"name": "score"}, {"name": "text"}],
                            parameters={**generate_cases()["greedy"], "binary_data_output": False})
    request["inputs"][0]["shape"] = [2, 1]
    request["inputs"][0]["data"] = [[d] for d in request["inputs"][0]["data"]]
    status, body, _ = server.post_json("/v2/models/trocr/versions/1/infer", request)
    assert status == 200, body
    assert [o["name"] for o in body["outputs"]] == ["score", "text"]
    assert body["outputs"][1]["data"] == [expected_text(n, "greedy") for n in NAMES[:2]]


@pytest.mark.parametrize("change, message", [
    (lambda r: r["inputs"][0].update(datatype="FP32"), "BYTES"),
    (lambda r: r["inputs"][0].update(shape=[5]), "holds 5 elements"),
    (lambda r: r["inputs"][0]["data"].__setitem__(0, "not*base64"), "not base64"),
    (lambda r: r.update(outputs=[{"name": "logits"}]), "logits"),
    (lambda r: r.update(inputs=[]), "exactly one"),
    (lambda r: r.update(parameters={"num_beams": 50}), "--request-max-beams"),
])
def test_kserve_bad_requests_are_400_with_reasons(server, change, message):
    request = infer_request(NAMES[:1])
    change(request)
    status, body, _ = server.post_json("/v2/models/trocr/infer", request)
    assert status == 400 and message in body["error"], body


def test_json_base64_bodies(server):
    document = {"images": [image_base64("line_rgb.png"),
                           {"data": "data:image/jpeg;base64," + image_base64("wide.jpg"), "name": "w.jpg"}]}
    status, body, _ = server.post_json("/v1/recognize", document)
    assert status == 200, body
    assert [r["text"] for r in body["results"]] == [expected_text("line_rgb.png"), expected_text("wide.jpg")]
    assert [r["name"] for r in body["results"]] == ["images[0]", "w.jpg"]
    urlsafe = base64.urlsafe_b64encode(image_bytes("tiny.png")).decode().rstrip("=")
    status, body, _ = server.post_json("/v1/recognize", {"image": urlsafe})
    assert status == 200 and body["results"][0]["text"] == expected_text("tiny.png")


def test_per_request_settings_give_hf_texts_for_each(server):
    """Every HF setting in the goldens, one request each, all with the same server."""
    for case, settings in generate_cases().items():
        if settings.get("num_beams", 1) > 5:
            continue
        status, body, _ = server.post_json("/v1/recognize", {"images": [image_base64(n) for n in NAMES],
                                                             "parameters": settings})
        assert status == 200, (case, body)
        for name, result in zip(NAMES, body["results"]):
            golden = GOLDEN["images"][name]["generate"][case]["text"]
            assert result["text"] == golden[0], (case, name)
            if settings.get("num_return_sequences", 1) > 1:
                assert [c["text"] for c in result["candidates"]] == golden, (case, name)


def test_requests_with_other_settings_are_batched_apart(server):
    """Concurrent greedy and beam requests each get their own settings' text."""
    import threading
    cases = generate_cases()
    answers = {}

    def client(case):
        answers[case] = server.post_json("/v1/recognize", {"images": [image_base64("wide.jpg")], "parameters": cases[case]})
    threads = [threading.Thread(target=client, args=(c,)) for c in ("greedy", "beam4_chinese", "greedy_norepeat2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for case, (status, body, _) in answers.items():
        assert status == 200 and body["results"][0]["text"] == expected_text("wide.jpg", case), case


@pytest.mark.parametrize("parameters, message", [
    ({"num_beam": 2}, "'num_beam' is not a generation setting"),
    ({"num_beams": 0}, "num_beams must be at least 1"),
    ({"max_new_tokens": 500}, "--request-max-new-tokens"),
    ({"early_stopping": "sometimes"}, "early_stopping"),
    ({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences"),
    ("fast", "must be an object"),
])
def test_bad_settings_are_400(server, parameters, message):
    status, body, _ = server.post_json("/v1/recognize", {"image": image_base64("tiny.png"), "parameters": parameters})
    assert status == 400 and message in body["error"], body


@pytest.mark.parametrize("document, message", [
    ({"images": ["AAA*"]}, "images[0]: not base64 (character '*' at offset 3)"),
    ({"images": [{"name": "x"}]}, "no \"data\""),
    ({"images": "abc"}, "expected a list"),
    ({"imgs": []}, "unknown field 'imgs'"),
    ({"images": []}, "no images"),
    ([1, 2], "must be an object"),
])
def test_bad_json_bodies_are_400(server, document, message):
    status, body, _ = server.post_json("/v1/recognize", document)
    assert status == 400 and message in body["error"], body


def test_multipart_answers_keep_the_upload_order_and_take_parameters(server):
    order = ["wide.jpg", "tiny.png", "line_rgb.png"]  # not sorted by field or file name
    parts = [(f"z{i}" if i % 2 else "a", name, image_bytes(name)) for i, name in enumerate(order)]
    body, headers = multipart(parts + [("parameters", None, json.dumps(generate_cases()["greedy"]).encode())])
    status, answer, _ = server.request("POST", "/v1/recognize", body, headers)
    assert status == 200, answer
    assert [r["name"] for r in answer["results"]] == order
    assert [r["text"] for r in answer["results"]] == [expected_text(n, "greedy") for n in order]


def test_openapi_document_matches_the_routes(server):
    status, document, _ = server.request("GET", "/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    examples = {
        ("post", "/v1/recognize"): (json.dumps({"image": image_base64("tiny.png")}).encode(), "application/json"),
        ("post", "/v2/models/trocr/infer"): (json.dumps(infer_request(["tiny.png"])).encode(), "application/json"),
    }
    documented = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            documented.add((method, path))
            body, kind = examples.get((method, path), (None, None))
            status, _, response = server.request(method.upper(), path, body, {"Content-Type": kind} if kind else {}, timeout=10)
            assert str(status) in operation["responses"], (method, path, status)
            declared = operation["responses"][str(status)].get("content", {})
            actual = response.getheader("Content-Type").split(";")[0]
            assert not declared or actual in declared, (method, path, actual, list(declared))
            # A wrong method is refused with the allowed one named.
            other = "GET" if method == "post" else "POST"
            status, _, response = server.request(other, path, timeout=10)
            assert status == 405 and response.getheader("Allow") == method.upper(), (other, path)
    for method, path in examples:
        assert (method, path) in documented
    assert server.request("GET", "/v3/nothing")[0] == 404


def test_access_log_and_request_ids(cli):
    with serving(cli, "--access-log", "-") as running:
        status, _, response = running.request("POST", "/v1/recognize", image_bytes("tiny.png"),
                                              {"Content-Type": "image/png", "X-Request-Id": "abc-123"})
        assert status == 200 and response.getheader("X-Request-Id") == "abc-123"
        status, _, response = running.request("GET", "/v1/recognize")
        generated = response.getheader("X-Request-Id")
        assert status == 405 and generated and generated != "abc-123"
        running.request("GET", "/healthz", headers={"X-Request-Id": "bad id with spaces"})
    log = "".join(running.lines)
    assert "id=abc-123 client=127.0.0.1 method=POST route=/v1/recognize status=200 images=1 latency_ms=" in log
    assert f"id={generated} client=127.0.0.1 method=GET route=/v1/recognize status=405 images=0" in log
    assert "route=/healthz status=200" in log and "id=bad id" not in log


def test_two_instances_share_the_queue_and_give_hf_texts(cli):
    """`--instances 2`: two engines on the one device take batches from one queue; concurrent
    clients get HF's texts, and both engines' images count under the device's metric."""
    import concurrent.futures
    names = sorted(GOLDEN["images"])
    with serving(cli, "--instances", "2", "--max-batch", "2", "--max-wait-ms", "5") as running:
        deadline = time.time() + 10  # the ready line follows /readyz's switch
        while "2 instances per device" not in "".join(running.lines) and time.time() < deadline:
            time.sleep(0.05)
        assert "2 instances per device" in "".join(running.lines)

        def client(name):
            return name, running.post_json("/v1/recognize", {"image": image_base64(name)})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(client, names * 4))
        for name, (status, body, _) in answers:
            assert status == 200 and body["results"][0]["text"] == expected_text(name), name
        metrics = running.request("GET", "/metrics")[1]
        assert f'trocr_device_images_total{{device="cpu"}} {len(answers)}' in metrics, metrics


def test_in_flight_batching_gives_hf_texts(cli):
    """`--batching in-flight`: greedy lines join the running batch between decoding steps, at most
    two at a time here (`--max-admission 2`); each concurrent client gets HF's greedy text (the
    golden model's own settings are beam search, which still runs in whole batches beside them)."""
    import concurrent.futures
    names = sorted(GOLDEN["images"])
    greedy = generate_cases()["greedy"]
    with serving(cli, "--batching", "in-flight", "--max-batch", "3", "--max-wait-ms", "2",
                 "--max-admission", "2") as running:

        def client(job):
            name, case = job
            parameters = greedy if case == "greedy" else {}
            return job, running.post_json("/v1/recognize", {"image": image_base64(name), "parameters": parameters})
        jobs = [(name, case) for name in names for case in ("greedy", "checkpoint_default")] * 2
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(client, jobs))
        for (name, case), (status, body, _) in answers:
            assert status == 200 and body["results"][0]["text"] == expected_text(name, case), (name, case)
        metrics = running.request("GET", "/metrics")[1]
        assert f'trocr_device_images_total{{device="cpu"}} {len(answers)}' in metrics, metrics
        assert any("in-flight batching," in line and "max admission 2)" in line for line in running.lines), running.lines


def test_batching_defaults_to_whole_batches_on_the_cpu(server):
    """`--batching auto` (the default) takes in-flight batching on CUDA devices only: on the CPU
    engine each admission's encoder pass stalls the running lines (REPORT sec. 5)."""
    deadline = time.monotonic() + 10  # the ready line may trail /readyz by a moment
    while not any("trocr serve: ready" in line for line in server.lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    ready = [line for line in server.lines if "trocr serve: ready" in line]
    assert ready and "whole batching (auto)," in ready[0] and "max admission" not in ready[0], server.lines
