#!/usr/bin/env python3
"""The annotation round trip against a real Label Studio (not a CI dependency).

1. ``run.py select --to label-studio`` picks 20 THUCNews headlines for a model folder (tasks with
   pre-annotations + the label config);
2. a local Label Studio (``pip install label-studio==1.23.2`` in a venv of its own, ``--ls`` names its
   executable) starts with a legacy API token; a project is created with that config and the tasks
   imported;
3. ``run.py serve`` starts and is connected as the project's ML backend (``/label-studio``); Label
   Studio is asked to retrieve predictions for every task (it calls the backend's ``/predict``);
4. annotations are posted (one cancelled, one task with two disagreeing annotations), the project
   is exported as JSON, and ``run.py import-labels`` reads it back.

    python bench/label_studio_roundtrip.py --ls /tmp/lsvenv/bin/label-studio --model DIR --out /tmp/ls_rt
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
from task_sets import THUCNEWS  # noqa: E402  (bench/: the script's folder is on sys.path)


def wait(url: str, seconds: float) -> None:
    t0 = time.time()
    while time.time() - t0 < seconds:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer in {seconds:.0f} s")


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    return done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ls", required=True, help="the label-studio executable")
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ls-port", type=int, default=8089)
    ap.add_argument("--serve-port", type=int, default=8099)
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    pool = out / "pool.txt"
    lines = (THUCNEWS / "test.txt").read_text(encoding="utf-8").splitlines()[:400]
    pool.write_text("\n".join(line.rpartition("\t")[0] for line in lines) + "\n", encoding="utf-8")
    print(run("select", "--model", args.model, "--pool", str(pool), "--budget", "20", "--to", "label-studio",
              "--out", str(out / "tasks.json")).strip())
    tasks = json.loads((out / "tasks.json").read_text(encoding="utf-8"))
    config = (out / "tasks.label_config.xml").read_text(encoding="utf-8")
    token = secrets.token_hex(20)
    ls_url, serve_url = f"http://127.0.0.1:{args.ls_port}", f"http://127.0.0.1:{args.serve_port}"
    ls = subprocess.Popen([args.ls, "start", "--no-browser", "--port", str(args.ls_port), "--data-dir",
                           str(out / "ls_data"), "--username", "bench@example.com", "--password", "bench-pass-123",
                           "--user-token", token, "--enable-legacy-api-token"],
                          stdout=open(out / "ls.log", "w"), stderr=subprocess.STDOUT,
                          env={**os.environ, "USE_DEFAULT_BANNED_SUBNETS": "false"})  # allows the backend on 127.0.0.1
    serve = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "serve", "--model", args.model, "--port",
                              str(args.serve_port)], stdout=open(out / "serve.log", "w"), stderr=subprocess.STDOUT)
    seen: dict = {}
    try:
        t0 = time.time()
        wait(f"{ls_url}/health", 240)
        seen["label_studio_ready_s"] = round(time.time() - t0, 1)
        wait(f"{serve_url}/label-studio/health", 120)
        h = {"Authorization": f"Token {token}"}
        c = httpx.Client(base_url=ls_url, headers=h, timeout=120)
        project = c.post("/api/projects", json={"title": "cls_app round trip", "label_config": config})
        project.raise_for_status()
        pid = project.json()["id"]
        imported = c.post(f"/api/projects/{pid}/import", json=tasks)
        imported.raise_for_status()
        seen["imported"] = imported.json()
        ml = c.post("/api/ml", json={"url": f"{serve_url}/label-studio", "project": pid, "title": "cls_app"})
        seen["ml_backend"] = {"status": ml.status_code, "body": ml.json() if ml.content else None}
        action = c.post(f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                        json={"selectedItems": {"all": True, "excluded": []}})
        seen["retrieve_predictions"] = {"status": action.status_code, "body": action.text[:300]}
        listed = c.get("/api/tasks", params={"project": pid, "page_size": 100, "fields": "all"}).json()
        rows = listed["tasks"] if isinstance(listed, dict) else listed
        versions: dict[str, int] = {}
        for task in rows:
            for p in c.get("/api/predictions", params={"task": task["id"]}).json():
                versions[str(p.get("model_version"))] = versions.get(str(p.get("model_version")), 0) + 1
        seen["predictions_by_model_version"] = versions
        choices = [t["predictions"][0]["result"][0]["value"]["choices"][0] if t["predictions"][0]["result"] else "x"
                   for t in tasks]
        for i, task in enumerate(rows):
            result = [{"from_name": "label", "to_name": "text", "type": "choices",
                       "value": {"choices": [choices[i] if choices[i] != "x" else "sports"]}}]
            c.post(f"/api/tasks/{task['id']}/annotations",
                   json={"result": result, "was_cancelled": i == 1}).raise_for_status()
            if i == 2:  # a second annotator who disagrees
                other = "stocks" if result[0]["value"]["choices"][0] != "stocks" else "sports"
                second = [{**result[0], "value": {"choices": [other]}}]
                c.post(f"/api/tasks/{task['id']}/annotations", json={"result": second}).raise_for_status()
        export = c.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
        export.raise_for_status()
        (out / "export.json").write_bytes(export.content)
        seen["exported_tasks"] = len(export.json())
        seen["import_labels"] = run("import-labels", str(out / "export.json"), "--from", "label-studio",
                                    "--out", str(out / "labeled.csv")).strip()
    finally:
        serve.terminate()
        ls.terminate()
        serve.wait(30)
        ls.wait(60)
    (out / "roundtrip.json").write_text(json.dumps(seen, indent=1, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(seen, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
