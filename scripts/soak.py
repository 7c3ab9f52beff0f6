#!/usr/bin/env python3
"""Soak driver of the local run (`make soak`, issue 15 point 4; started by scripts/soak.sh).

SOAK_CLIENTS threads (default 4) each run a scripted, mixed session against `make run` for
SOAK_MINUTES (default 10, fractions allowed), over every endpoint and option:

* creates, single and multi (1-3 host names, `quantity` given or not, flat or wrapped as
  `{"data": ...}`, authMethod 0 and 1, a generated login or the user's own SSH key) on all three
  clouds and every size of data/demo.json (Kraud.Cloud and Azure simulated, AWS on moto's EC2,
  including the confidential m6a.xlarge that moto cannot honour), with and without
  `Idempotency-Key`: the same key and body again must answer the same status, ETag and body (with
  `Idempotent-Replayed: true`), the key with another body must be refused with a 4xx; refusals
  (a host name in use: 409) are replayed the same way; a JSON array as the body is tried too;
* GET, PATCH (tags, renames) with a fresh `If-Match` (accepted) and a stale one (412), start,
  stop, reboot and delete (each also with fresh or stale `If-Match` and with an
  `Idempotency-Key`, replayed and reused), security rules added (per cloud: the neutral, AWS and
  Azure shapes; rules a cloud cannot express: 422), listed and deleted, credentials, activity
  (paged), lists with filters (`status`, `tag`, `name`) and paging (`limit`, `cursor`), another
  team's project (404);
* a share of malformed requests (bad JSON, bad ids, unknown fields, no or a bad token, wrong
  content type, bad query values and keys, unknown routes and methods): each must be a 4xx with
  the API's JSON error body.

The session opens without Idempotency-Key for its first fifth (at most 60 s), so that the end-state
check can tell what settled before the first keyed request and what after it.

Each client keeps its share of the team's quota (the team's `quotas` in data/demo.json, else
QUOTA_MAX_ACTIVE_VMS / QUOTA_MAX_VCPUS, default 50 / 200, as the run uses them; 80 % of it split
between the clients) by deleting its oldest VMs
before a create would go over it, and tracks the VMs it made with the last accepted action on
each. A 503 is retried after its `Retry-After`.

At the end it prints one summary table (per endpoint: requests, status codes, p50 and p99 latency
in ms; also written to .local/logs/soak-summary.md) and checks, each violation printed:

1. end states: within 30 s of the session's end every VM is where its last accepted action puts
   it: running (3) after create, start and reboot; stopped (7) after stop; gone (404, or status 8)
   after delete; failed (6) with a `statusReason` for a size the cloud cannot honour (the
   confidential size on moto's EC2). Printed per size: what was expected and what was seen;
2. no VM record (DynamoDB Local, boto3 scan of `sk = VM`) has a `pendingOp` whose `requestedAt`
   is older than 60 s;
3. the stream consumer's checkpoint (.local/stream-consumer.json, written by the consumer:
   `{"streamArn", "shards": {"<shardId>": {"checkpoint", "done"}}}`) equals, per shard, the last
   sequence number of the table's stream as read here with `dynamodbstreams` (TRIM_HORIZON, then
   GetRecords until no more records); the consumer gets up to 10 s to catch up. A missing file is
   a failure; so is a record the consumer sent to its on-failure destination during the run (the
   file the run's log names, e.g. .local/stream-failures.jsonl);
4. no 5xx but 503; a 503 only with `Retry-After`, on fewer than 0.1 % of the requests, and each
   retried successfully;
5. no warning or error in the run's log repeats more than 10 times. Choice made for the log
   rule: the server logs INFO lines per request and per action by design ("request completed"
   with status and duration for every request, "request refused" for every 4xx, "virtual machine
   stopped", ...), so they repeat thousands of times in any soak. The rule is therefore applied
   to WARN and ERROR lines and to lines without a tracing level (eprintln! output such as
   "cleanup run failed: ...", panics); INFO, DEBUG and TRACE lines are counted, and the most
   frequent are printed, but not asserted. Lines are compared as messages: the timestamp is
   dropped, span fields and `key=value` values are blanked, and quoted strings, hex ids and numbers
   are replaced by placeholders. The run's start-up banner (everything up to "VM API listening
   on") is ignored;
6. the RSS of the `vmctl dev` process at the end is at most 1.5 times its RSS after the first
   minute (for runs shorter than 2 minutes: at half of the run);
7. the API answered as documented during the session: expected statuses per step, fresh
   `If-Match` accepted (a 412 counts only if the VM's version really moved in between), stale
   `If-Match` 412, replays identical, reused keys refused, 4xx bodies in the JSON error shape, list
   filters honoured. Quota refusals are allowed but must stay under half of the create attempts.

p50 and p99 are reported, not asserted. Exit code 0 when every check passed, 1 otherwise.
All traffic goes to 127.0.0.1; every loop is bounded in count and time.

Environment (set by scripts/soak.sh): SOAK_BASE_URL, SOAK_TOKEN, SOAK_RUN_LOG, SOAK_VMCTL_PID,
AWS_ENDPOINT_URL_DYNAMODB, TABLE_NAME, AWS_* (local); optional SOAK_THINK_MS (default 100, the
mean pause between a client's requests: four scripted clients, about 30 requests a second in
all; at 25 ms, 80 a second, moto's EC2 slowed past the SDK's 10 s timeout after 8 minutes with
a few hundred instances, which is a load test of moto, not a session), SOAK_SEED.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import datetime as dt
import json
import math
import os
import random
import re
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

ROOT = Path(__file__).resolve().parent.parent
STATUS_FILE = ROOT / ".local" / "stream-consumer.json"
SUMMARY_FILE = ROOT / ".local" / "logs" / "soak-summary.md"
STATUS_NAMES = ["creating", "provisioning", "starting", "running", "stopping", "deleting", "failed",
                "stopped", "deleted"]
SETTLE_SECONDS = 30
PENDING_MAX_AGE = 60
CHECKPOINT_WAIT = 10
REQUEST_TIMEOUT = 30
MAX_503_RETRIES = 3
MAX_PAGES = 10
LOG_REPEAT_LIMIT = 10
RSS_FACTOR = 1.5
# An Ed25519 public key (its private half was thrown away): the user's own login material.
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA47xecUvQFmqU5UBGmfGjgqMOXYBQV4oRzKH60JdQtc soak@vm-api"

EP_CREATE = "POST /api/virtual-machines"
EP_LIST = "GET /api/teams/{team}/projects/{project}/virtual-machines"
EP_GET = "GET /api/virtual-machines/{id}"
EP_PATCH = "PATCH /api/virtual-machines/{id}"
EP_DELETE = "DELETE /api/virtual-machines/{id}"
EP_ACTION = "PUT /api/virtual-machines/{id}/{action}"
EP_CREDS = "GET /api/virtual-machines/{id}/credentials"
EP_ACTIVITY = "GET /api/virtual-machines/{id}/activity"
EP_RULE_CREATE = "POST /api/security-rules"
EP_RULE_LIST = "GET /api/virtual-machines/{id}/security-rules"
EP_RULE_DELETE = "DELETE /api/security-rules/{id}"
EP_HEALTH = "GET /health"
EP_CATALOG = "GET /api/(catalog discovery)"
EP_COSTS = "GET /api/teams/{team}/costs"
EP_ADMIN = "GET /admin/api/teams/{team}/virtual-machines"
EP_RESIZE = "PUT /api/virtual-machines/{id}/resize"
EP_OTHER = "(unknown routes)"


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"soak.py: {name} is not set (run it through scripts/soak.sh or `make soak`)")
    return value


# ---------------------------------------------------------------------------------------------
# Configuration and catalog

BASE = env("SOAK_BASE_URL").rstrip("/")
if not re.fullmatch(r"http://127\.0\.0\.1:\d+", BASE):
    sys.exit(f"soak.py: SOAK_BASE_URL must be http://127.0.0.1:<port>, got {BASE}")
TOKEN = env("SOAK_TOKEN").strip()
ADMIN_KEY = env("SOAK_ADMIN_KEY").strip()
MINUTES = float(env("SOAK_MINUTES", "10"))
CLIENTS = int(env("SOAK_CLIENTS", "4"))
if not (0 < MINUTES <= 24 * 60) or not (1 <= CLIENTS <= 64):
    sys.exit("soak.py: SOAK_MINUTES must be in (0, 1440] and SOAK_CLIENTS in [1, 64]")
RUN_LOG = Path(env("SOAK_RUN_LOG"))
THINK_MS = float(env("SOAK_THINK_MS", "100"))
# SOAK_IDEMPOTENCY=0 sends no Idempotency-Key at all (to tell whether a problem comes from them).
USE_KEYS = env("SOAK_IDEMPOTENCY", "1") != "0"
SEED = int(env("SOAK_SEED", str(int(time.time()))))
DDB_URL = env("AWS_ENDPOINT_URL_DYNAMODB")
if not DDB_URL.startswith("http://127.0.0.1:"):
    sys.exit(f"soak.py: AWS_ENDPOINT_URL_DYNAMODB must be DynamoDB Local on 127.0.0.1, got {DDB_URL}")
TABLE = env("TABLE_NAME", "vm-api")
DURATION = MINUTES * 60.0
# The session opens without Idempotency-Key for this long, so that a run shows what settles
# before the first keyed request and what after it.
KEY_FREE_SECONDS = min(60.0, DURATION * 0.2)
KEYS_FROM: list[float] = [0.0]  # monotonic time from which keys are sent (set in main)
RSS_SAMPLE_AT = 60.0 if DURATION >= 120 else DURATION / 2


def jwt_sub(token: str) -> str:
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["sub"]


@dataclass
class Offering:
    """One size of the demo catalog, with everything a create needs."""
    cloud: str
    cloud_id: str
    provider_id: str
    size_id: str
    size_name: str
    vcpus: int
    price_id: str
    region: dict
    images: list
    confidential: bool

    @property
    def label(self) -> str:
        extra = ", confidential" if self.confidential else ""
        return f"{self.size_name} ({self.cloud}{extra})"

    @property
    def slug(self) -> str:
        return {"Kraud.Cloud": "kraud", "AWS": "aws", "Azure": "azure"}.get(self.cloud, "other")


def load_catalog() -> tuple[list[Offering], dict, str, str, str, str]:
    demo = json.loads((ROOT / "data" / "demo.json").read_text())
    clouds = {c["_id"]: c["name"] for c in demo["cloudProviders"]}
    providers = {p["_id"]: p for p in demo["providers"]}
    offerings = []
    for size in demo["sizes"]:
        prov = providers[size["provider"]]
        price = next(p for p in demo["prices"]
                     if p["provider"] == prov["_id"] and p["sizeName"] == size["name"]
                     and p["locationName"] == size["location"])
        loc = next(l for l in prov["locations"] if l["datacenter"]["name"] == size["location"])
        images = [i for i in prov["images"] if i["distribution"] == price["imageName"]]
        offerings.append(Offering(
            cloud=clouds[prov["cloudProvider"]], cloud_id=prov["cloudProvider"],
            provider_id=prov["_id"], size_id=size["_id"], size_name=size["name"],
            vcpus=int(size["vCPUs"]), price_id=price["_id"],
            region={"physicalLocation": loc["physicalLocation"], "datacenter": loc["datacenter"]},
            images=images, confidential=bool(size.get("confidential"))))
    user = jwt_sub(TOKEN)
    team = next(t for t in demo["teams"] if any(m["user"] == user for m in t["members"]))
    project = next(p for p in demo["projects"] if p["team"] == team["_id"])
    other = next(p for p in demo["projects"] if p["team"] != team["_id"])
    return offerings, team.get("quotas") or {}, team["_id"], project["_id"], other["team"], other["_id"]


OFFERINGS, TEAM_QUOTAS, TEAM, PROJECT, OTHER_TEAM, OTHER_PROJECT = load_catalog()
# The team's own limits (demo.json's team record), else the service's defaults as the run has them.
QUOTA_VMS = int(TEAM_QUOTAS.get("maxActiveVms", os.environ.get("QUOTA_MAX_ACTIVE_VMS", "50")))
QUOTA_VCPUS = int(TEAM_QUOTAS.get("maxVcpus", os.environ.get("QUOTA_MAX_VCPUS", "200")))
LIST_PATH = f"/api/teams/{TEAM}/projects/{PROJECT}/virtual-machines"

# ---------------------------------------------------------------------------------------------
# Shared results


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = collections.defaultdict(list)
        self.codes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.total = 0
        self.violations: dict[str, list[str]] = collections.defaultdict(list)
        self.server_errors: list[str] = []      # 5xx other than 503
        self.unavailable: list[dict] = []       # each 503: endpoint, Retry-After, retried ok
        self.transport_errors: list[str] = []
        self.counters: collections.Counter = collections.Counter()
        self.stop = threading.Event()

    def record(self, ep: str, status: int | str, ms: float) -> None:
        with self.lock:
            self.total += 1
            self.latency[ep].append(ms)
            self.codes[ep][status] += 1

    def violate(self, check: str, message: str) -> None:
        with self.lock:
            self.violations[check].append(message)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counters[what] += n


R = Results()


def short(text: str | bytes | None, n: int = 300) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[:n] + "..."


@dataclass
class Answer:
    status: int
    headers: Any
    text: str
    method: str
    path: str
    sent: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    def where(self) -> str:
        body = f" body={short(self.sent, 200)}" if self.sent else ""
        return f"{self.method} {self.path}{body} -> {self.status} {short(self.text)}"


class ServerGone(Exception):
    pass


class Http:
    """One keep-alive session; every request is timed, counted and retried after a 503."""

    def __init__(self) -> None:
        self.s = requests.Session()
        self.s.trust_env = False  # no proxies: 127.0.0.1 only

    def call(self, method: str, path: str, ep: str, *, body: Any = None, raw: bytes | str | None = None,
             headers: dict | None = None, token: str | None = TOKEN, params: Any = None,
             expect: set[int] | None = None, check: str = "api", content_type: str | None = "application/json",
             what: str = "", _attempt: int = 0) -> Answer:
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        url = BASE + path
        attempt = _attempt + 1
        t0 = time.perf_counter()
        try:
            r = self.s.request(method, url, data=data, headers=hdrs, params=params,
                               timeout=REQUEST_TIMEOUT, allow_redirects=False)
            text = r.text
        except requests.RequestException as e:
            ms = (time.perf_counter() - t0) * 1000
            R.record(ep, "ERR", ms)
            R.transport_errors.append(f"{method} {path}: {type(e).__name__}: {short(str(e), 200)}")
            if isinstance(e, requests.ConnectionError):
                # Is the server still there at all?
                try:
                    requests.get(BASE + "/health", timeout=5)
                except requests.RequestException:
                    R.stop.set()
                    raise ServerGone(f"the API stopped answering ({e})") from e
            raise
        ms = (time.perf_counter() - t0) * 1000
        R.record(ep, r.status_code, ms)
        shown = (f"{method} {r.request.path_url} "
                 f"body={short(data, 200) if data else ''} -> {r.status_code} {short(text)}")
        if r.status_code == 503:
            retry_after = r.headers.get("Retry-After")
            entry = {"ep": ep, "retry_after": retry_after, "retried_ok": False, "answer": shown}
            with R.lock:
                R.unavailable.append(entry)
            if attempt <= MAX_503_RETRIES:
                try:
                    wait = min(float(retry_after), 10.0) if retry_after else 2.0
                except ValueError:
                    wait = 2.0
                time.sleep(wait)
                nxt = self.call(method, path, ep, body=body, raw=raw, headers=headers, token=token,
                                params=params, expect=expect, check=check,
                                content_type=content_type, what=what, _attempt=attempt)
                entry["retried_ok"] = nxt.status < 500
                return nxt
        elif r.status_code >= 500:
            with R.lock:
                R.server_errors.append(shown)
        ans = Answer(r.status_code, r.headers, text, method, r.request.path_url,
                     data.decode("utf-8", "replace") if data else "")
        if 400 <= r.status_code < 500:
            check_error_body(ans, what)
        if expect is not None and r.status_code not in expect and r.status_code != 503 \
                and r.status_code < 500:
            R.violate(check, f"{what or ep}: expected {sorted(expect)}, got {ans.where()}")
        return ans


def check_error_body(ans: Answer, what: str) -> None:
    body = ans.json()
    ok = (isinstance(body, dict) and body.get("statusCode") == ans.status
          and isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
          and isinstance(body.get("error"), str))
    ctype = ans.headers.get("Content-Type", "")
    if not ok or "json" not in ctype:
        R.violate("error-bodies", f"{what}: a {ans.status} without the JSON error shape "
                                  f"(Content-Type {ctype!r}): {ans.where()}")


def keeps_key(ans: Answer) -> bool:
    """Whether the answer is kept for its Idempotency-Key (README: refusals and successes are;
    malformed requests and answers worth retrying free the key)."""
    return ans.status < 500 and ans.status not in (400, 413, 415) and code_of(ans) != "CONCURRENT_MODIFICATION"


def code_of(ans: Answer) -> str:
    body = ans.json()
    return body.get("code", "") if isinstance(body, dict) else ""


def version_of(etag: str | None) -> int | None:
    if not etag:
        return None
    m = re.fullmatch(r'(?:W/)?"(\d+)"', etag.strip())
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------------------------
# The clients


@dataclass
class Vm:
    id: str
    name: str
    offering: Offering
    client: int
    with_key: bool
    made: float
    last_action: str = "create"
    last_action_at: float = 0.0
    status: int = 0
    rules: list = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.last_action != "delete"

    def expected(self) -> str:
        if self.last_action == "delete":
            return "gone"
        if self.last_action == "stop":
            return "stopped"
        if self.offering.confidential and self.offering.cloud == "AWS":
            return "failed"
        return "running"


ALL_VMS: list[Vm] = []
ALL_LOCK = threading.Lock()
FIRST_KEY: list[float] = []  # when the first request with an Idempotency-Key was sent


def note_first_key() -> None:
    with ALL_LOCK:
        if not FIRST_KEY:
            FIRST_KEY.append(time.monotonic())


class Client(threading.Thread):
    def __init__(self, idx: int, deadline: float) -> None:
        super().__init__(name=f"client-{idx}", daemon=True)
        self.idx = idx
        self.deadline = deadline
        self.rng = random.Random(SEED * 1000 + idx)
        self.http = Http()
        self.vms: dict[str, Vm] = {}
        self.seq = 0
        self.round = 0
        self.max_vms = max(3, (QUOTA_VMS * 4 // 5) // CLIENTS)
        self.max_vcpus = max(8, (QUOTA_VCPUS * 4 // 5) // CLIENTS)

    # -- helpers --------------------------------------------------------------------------------

    def key(self, share: float) -> dict[str, str]:
        """An Idempotency-Key header for `share` of the calls (none with SOAK_IDEMPOTENCY=0)."""
        if USE_KEYS and time.monotonic() >= KEYS_FROM[0] and self.rng.random() < share:
            note_first_key()
            return {"Idempotency-Key": str(uuid.uuid4())}
        return {}

    def think(self) -> None:
        if THINK_MS > 0:
            time.sleep(self.rng.uniform(0, 2 * THINK_MS) / 1000)

    def call(self, *a, **kw) -> Answer:
        self.think()
        return self.http.call(*a, **kw)

    def name(self) -> str:
        self.seq += 1
        return f"soak-c{self.idx}-{self.seq}"

    def active(self) -> list[Vm]:
        return [v for v in self.vms.values() if v.active]

    def pick(self, settled: bool = True, statuses: set[int] | None = None) -> Vm | None:
        now = time.monotonic()
        vms = [v for v in self.active() if (statuses is None or v.status in statuses)]
        old = [v for v in vms if now - v.made > 4] if settled else vms
        pool = old or vms
        return self.rng.choice(pool) if pool else None

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline and not R.stop.is_set()

    def accept(self, vm: Vm, action: str, ans: Answer) -> None:
        vm.last_action = action
        vm.last_action_at = time.monotonic()
        body = ans.json()
        if isinstance(body, dict) and isinstance(body.get("status"), int):
            vm.status = body["status"]

    def replay(self, first: Answer, method: str, path: str, ep: str, what: str, **kw) -> bool:
        """The same request with the same key again: must answer exactly the first answer. False
        when the first answer freed the key (documented: 400, 413, 415, 5xx,
        CONCURRENT_MODIFICATION), so there is nothing to replay (nor a key to reuse)."""
        if not keeps_key(first):
            R.count("keys freed by their first answer")
            return False
        again = self.call(method, path, ep, what=f"{what} (replay)", **kw)
        R.count("idempotent replays")
        problems = []
        if again.status != first.status:
            problems.append(f"status {again.status} instead of {first.status}")
        if again.text != first.text:
            problems.append(f"body differs: first {short(first.text, 200)} / replay {short(again.text, 200)}")
        if first.etag and again.etag != first.etag:
            problems.append(f"ETag {again.etag} instead of {first.etag}")
        if again.headers.get("Idempotent-Replayed", "").lower() != "true":
            problems.append("no `Idempotent-Replayed: true`")
        if first.headers.get("Idempotent-Replayed"):
            problems.append("the first answer already says Idempotent-Replayed")
        if problems:
            R.violate("idempotency", f"{what}: replay with the same key and request: "
                                     f"{'; '.join(problems)} ({again.method} {again.path})")
        return True

    def reuse(self, method: str, path: str, ep: str, what: str, **kw) -> Answer:
        """A key already used with another request: must be refused with a 4xx (422)."""
        ans = self.call(method, path, ep, what=f"{what} (key reused)", **kw)
        R.count("reused keys")
        if not (400 <= ans.status < 500):
            R.violate("idempotency", f"{what}: a key reused with another request was not refused: "
                                     f"{ans.where()}")
        elif ans.status != 422 or code_of(ans) != "IDEMPOTENCY_KEY_REUSED":
            R.violate("api", f"{what}: key reuse answered {ans.status} {code_of(ans)}, documented: "
                             f"422 IDEMPOTENCY_KEY_REUSED: {ans.where()}")
        return ans

    def track(self, ans: Answer, off: Offering, with_key: bool) -> list[Vm]:
        made = []
        body = ans.json()
        if not isinstance(body, list):
            R.violate("api", f"create: 201 without a JSON array: {ans.where()}")
            return made
        for item in body:
            vm = Vm(id=item["_id"], name=item["name"], offering=off, client=self.idx,
                    with_key=with_key, made=time.monotonic(), last_action_at=time.monotonic(),
                    status=item.get("status", 0))
            self.vms[vm.id] = vm
            with ALL_LOCK:
                ALL_VMS.append(vm)
            made.append(vm)
        R.count("VMs created", len(made))
        return made

    def fresh(self, vm: Vm) -> Answer:
        ans = self.call("GET", f"/api/virtual-machines/{vm.id}", EP_GET, expect={200, 404}, what="get")
        body = ans.json()
        if ans.status == 200 and isinstance(body, dict):
            vm.status = body.get("status", vm.status)
            if body.get("_id") != vm.id:
                R.violate("api", f"get: another VM's body: {ans.where()}")
        elif ans.status == 404 and vm.active:
            R.violate("api", f"get: a VM never deleted answers 404: {ans.where()}")
        return ans

    def if_match_refused(self, vm: Vm, sent: str, ans: Answer, what: str) -> None:
        """A 412 on a fresh ETag is fine only if the VM's version moved since (the provisioner)."""
        now = self.fresh(vm)
        if version_of(now.etag) == version_of(sent):
            R.violate("if-match", f"{what}: a fresh If-Match {sent} was refused although the VM is "
                                  f"still at that version: {ans.where()}")
        else:
            R.count("fresh If-Match lost a race with the provisioner")

    # -- steps ----------------------------------------------------------------------------------

    def make_room(self, n: int, vcpus: int) -> None:
        for _ in range(20):
            act = self.active()
            if not act or (len(act) + n <= self.max_vms
                           and sum(v.offering.vcpus for v in act) + vcpus <= self.max_vcpus):
                return
            # Failed VMs first (they count until deleted), else any: VMs of every age stay around.
            failed = [v for v in act if v.status == 6 and time.monotonic() - v.made > 10]
            victim = self.rng.choice(failed or act)
            self.delete(victim, variant=self.rng.choice(["plain", "key", "fresh"]))

    def create_body(self, off: Offering, names: list[str]) -> dict:
        image = off.images[(self.round + self.idx) % len(off.images)]
        auth = self.rng.choice([0, 1])
        body: dict[str, Any] = {
            "cloudProvider": off.cloud_id, "team": TEAM, "project": PROJECT, "hostNames": names,
            "provider": off.provider_id, "size": off.size_id, "price": off.price_id,
            "subscription": self.rng.choice(["", None]),
            "tags": ["soak", f"c{self.idx}", off.slug],
            "access": {"sshPublicKey": SSH_PUBLIC_KEY} if auth == 1 and self.rng.random() < 0.3 else None,
            "region": off.region, "image": image, "authMethod": auth,
        }
        if self.rng.random() < 0.5:
            body["quantity"] = len(names)
        return body

    def create(self) -> None:
        off = OFFERINGS[(self.round + self.idx) % len(OFFERINGS)]
        n = min([1, 2, 1, 3][self.round % 4], self.max_vms, max(1, self.max_vcpus // off.vcpus))
        self.make_room(n, n * off.vcpus)
        names = [self.name() for _ in range(n)]
        body = self.create_body(off, names)
        sent = {"data": body} if self.rng.random() < 0.3 else body
        headers = self.key(0.5)
        with_key = bool(headers)
        R.count("create attempts")
        ans = self.call("POST", "/api/virtual-machines", EP_CREATE, body=sent, headers=headers,
                        expect={201, 409}, what=f"create {n} x {off.label}")
        if ans.status == 409:
            code = code_of(ans)
            if code == "QUOTA_EXCEEDED":
                R.count("quota refusals")
            elif code != "CONCURRENT_MODIFICATION":
                R.violate("api", f"create of fresh names refused: {ans.where()}")
        made = self.track(ans, off, with_key) if ans.status == 201 else []
        if ans.status == 201 and len(made) != n:
            R.violate("api", f"create of {n} host names made {len(made)} VMs: {ans.where()}")
        if with_key:
            if self.replay(ans, "POST", "/api/virtual-machines", EP_CREATE, "create", body=sent, headers=headers):
                other = dict(body, hostNames=[self.name()])
                other.pop("quantity", None)
                again = self.reuse("POST", "/api/virtual-machines", EP_CREATE, "create", body=other,
                                   headers=headers)
                if again.status == 201:
                    self.track(again, off, True)
        # A refusal: a host name in use (409 HOST_NAME_TAKEN), replayed the same with a key.
        if made and self.round % 3 == 1:
            taken = made[0].name
            dup = self.create_body(off, [taken])
            key = self.key(0.5)
            ans = self.call("POST", "/api/virtual-machines", EP_CREATE, body=dup, headers=key,
                            expect={409}, what="create with a host name in use")
            if ans.status == 409 and code_of(ans) != "HOST_NAME_TAKEN":
                R.violate("api", f"create with a host name in use: {code_of(ans)}: {ans.where()}")
            if ans.status == 201:
                self.track(ans, off, bool(key))
            if key:
                self.replay(ans, "POST", "/api/virtual-machines", EP_CREATE, "create refused (name in use)",
                            body=dup, headers=key)
        # The body as a JSON array of one create request.
        if self.round % 7 == 3:
            self.make_room(1, off.vcpus)
            arr = [self.create_body(off, [self.name()])]
            ans = self.call("POST", "/api/virtual-machines", EP_CREATE, body=arr,
                            expect={201, 400}, what="create with a JSON array body")
            R.count(f"array create body answered {ans.status}")
            if ans.status == 201:
                self.track(ans, off, False)

    def patch(self, vm: Vm) -> None:
        g = self.fresh(vm)
        if g.status != 200:
            return
        first = g.etag
        tags = ["soak", f"c{self.idx}", vm.offering.slug, f"r{self.round}"]
        ans = self.call("PATCH", f"/api/virtual-machines/{vm.id}", EP_PATCH, body={"tags": tags},
                        headers={"If-Match": first}, expect={200, 409, 412}, what="PATCH with a fresh If-Match")
        if ans.status == 412:
            self.if_match_refused(vm, first, ans, "PATCH")
            return
        if ans.status != 200:
            return
        R.count("fresh If-Match accepted")
        if version_of(ans.etag) is None or version_of(ans.etag) == version_of(first):
            R.violate("api", f"PATCH: the answer's ETag {ans.etag} is not a new version of {first}")
        # `first` is stale now.
        stale = self.call("PATCH", f"/api/virtual-machines/{vm.id}", EP_PATCH, body={"tags": ["stale"]},
                          headers={"If-Match": first}, expect={412}, what="PATCH with a stale If-Match")
        if stale.status == 412:
            R.count("stale If-Match refused")
        else:
            R.violate("if-match", f"PATCH with a stale If-Match {first} was not refused: {stale.where()}")
        if self.rng.random() < 0.3:
            new = self.name()
            ans = self.call("PATCH", f"/api/virtual-machines/{vm.id}", EP_PATCH, body={"name": new},
                            expect={200, 409}, what="rename")
            if ans.status == 200:
                vm.name = new

    def action(self, vm: Vm) -> None:
        g = self.fresh(vm)
        if g.status != 200:
            return
        st = vm.status
        if st == 3:
            act = self.rng.choice(["stop", "stop", "reboot"])
        elif st == 7:
            act = "start"
        else:
            act = self.rng.choice(["start", "stop", "reboot"])
        path = f"/api/virtual-machines/{vm.id}/{act}"
        ep = EP_ACTION.replace("{action}", act)
        variant = self.rng.choices(["plain", "fresh", "stale", "key"], [3, 3, 1, 3])[0]
        headers: dict[str, str] = {}
        if variant == "fresh" and g.etag:
            headers["If-Match"] = g.etag
        if variant == "stale":
            v = version_of(g.etag) or 1
            headers["If-Match"] = f'"{max(v - 1, 0)}"'
        if variant == "key":
            headers = self.key(1.0)
            variant = "key" if headers else "plain"
        allowed = {200, 409} | ({412} if "If-Match" in headers else set())
        if variant == "stale":
            allowed = {412}
        ans = self.call("PUT", path, ep, headers=headers, expect=allowed, what=f"{act} ({variant})")
        if ans.status == 200:
            self.accept(vm, act, ans)
            if variant == "stale":
                R.violate("if-match", f"{act} with a stale If-Match {headers['If-Match']} was accepted: {ans.where()}")
            if variant == "fresh":
                R.count("fresh If-Match accepted")
        elif ans.status == 412:
            if variant == "fresh":
                self.if_match_refused(vm, headers["If-Match"], ans, act)
            else:
                R.count("stale If-Match refused")
        elif ans.status == 409 and code_of(ans) not in ("ILLEGAL_TRANSITION", "CONCURRENT_MODIFICATION"):
            R.violate("api", f"{act}: 409 with code {code_of(ans)}: {ans.where()}")
        if variant == "key" and self.replay(ans, "PUT", path, ep, act, headers=headers):
            other = "start" if act != "start" else "stop"
            again = self.reuse("PUT", f"/api/virtual-machines/{vm.id}/{other}",
                               EP_ACTION.replace("{action}", other), act, headers=headers)
            if again.status == 200:
                self.accept(vm, other, again)

    def resize(self, vm: Vm) -> None:
        """Another size of the VM's provider (never a confidential one: moto cannot run them);
        Kraud.Cloud refuses with 422, a VM busy or the quota full with 409."""
        others = [o for o in OFFERINGS if o.provider_id == vm.offering.provider_id
                  and o.size_id != vm.offering.size_id and not o.confidential]
        if not others:
            return
        to = self.rng.choice(others)
        kraud = vm.offering.cloud.startswith("Kraud")
        ans = self.call("PUT", f"/api/virtual-machines/{vm.id}/resize", EP_RESIZE,
                        body={"size": to.size_id, "price": to.price_id},
                        expect={422} if kraud else {200, 409}, what=f"resize to {to.size_name}")
        if ans.status == 200:
            if (ans.json() or {}).get("status") not in (3, 7):
                R.violate("api", f"resize answered another status: {ans.where()}")
            vm.offering = to
            R.count("resizes asked")
        elif ans.status == 409 and code_of(ans) not in ("ILLEGAL_TRANSITION", "QUOTA_EXCEEDED",
                                                         "CONCURRENT_MODIFICATION"):
            R.violate("api", f"resize: 409 with code {code_of(ans)}: {ans.where()}")

    def delete(self, vm: Vm, variant: str | None = None) -> None:
        variant = variant or self.rng.choice(["plain", "fresh", "stale", "key"])
        path = f"/api/virtual-machines/{vm.id}"
        headers: dict[str, str] = {}
        if variant in ("fresh", "stale"):
            g = self.fresh(vm)
            if g.status != 200:
                return
            if variant == "fresh":
                headers["If-Match"] = g.etag
            else:
                headers["If-Match"] = f'"{(version_of(g.etag) or 2) - 1}"'
        if variant == "key":
            headers = self.key(1.0)
            variant = "key" if headers else "plain"
        allowed = {200, 409} | ({412} if "If-Match" in headers else set())
        if variant == "stale":
            allowed = {412}
        ans = self.call("DELETE", path, EP_DELETE, headers=headers, expect=allowed, what=f"delete ({variant})")
        if ans.status == 200:
            self.accept(vm, "delete", ans)
            if variant == "stale":
                R.violate("if-match", f"delete with a stale If-Match was accepted: {ans.where()}")
        elif ans.status == 412 and variant == "fresh":
            self.if_match_refused(vm, headers["If-Match"], ans, "delete")
        elif ans.status == 412:
            R.count("stale If-Match refused")
        if variant == "key" and self.replay(ans, "DELETE", path, EP_DELETE, "delete", headers=headers):
            self.reuse("PUT", f"/api/virtual-machines/{vm.id}/start", EP_ACTION.replace("{action}", "start"),
                       "delete", headers=headers)
        if vm.active:
            # Stale refused, or a race: delete for sure (bounded), so quotas are kept.
            for _ in range(3):
                ans = self.call("DELETE", path, EP_DELETE, expect={200, 409}, what="delete (after a refusal)")
                if ans.status == 200:
                    self.accept(vm, "delete", ans)
                    break
        if not vm.active:
            g = self.call("GET", path, EP_GET, expect={200, 404}, what="get after delete")
            body = g.json()
            if g.status == 200 and isinstance(body, dict) and body.get("status") not in (5, 8):
                R.violate("api", f"get after delete: status {body.get('status')}: {g.where()}")
            if self.rng.random() < 0.3:
                # Refused: no actions on a VM being deleted (409), or gone (404).
                self.call("PUT", f"{path}/start", EP_ACTION.replace("{action}", "start"),
                          expect={404, 409}, what="start of a deleted VM")

    def rule_body(self, vm: Vm, n: int, supported: bool = True) -> dict:
        name = f"soak-{self.idx}-{n}"
        cloud = vm.offering.cloud
        if cloud == "Kraud.Cloud":
            if not supported:
                return {"virtualMachine": vm.id, "name": name, "protocol": "Tcp", "portRange": ["22"],
                        "cidrBlock": "0.0.0.0/0", "direction": "Inbound"}
            return {"virtualMachine": vm.id, "name": name, "protocol": "*", "portRange": ["*"],
                    "cidrBlock": "0.0.0.0/0", "direction": "Inbound",
                    "access": self.rng.choice(["Allow", "Deny"]), "description": "soak rule"}
        if cloud == "AWS":
            if not supported:
                return {"virtualMachine": vm.id, "name": name, "protocol": "Tcp", "portRange": ["22"],
                        "access": "Deny", "direction": "Inbound"}
            if self.rng.random() < 0.5:  # the platform's AWS shape
                return {"protocol": "Tcp", "direction": "Inbound", "portRange": ["8080", "8443"], "name": name,
                        "description": "", "source": "*", "cidrBlock": "0.0.0.0/0", "virtualMachine": vm.id}
            proto = self.rng.choice(["Udp", "Tcp", "Icmp"])
            body = {"virtualMachine": vm.id, "name": name, "protocol": proto, "cidrBlock": "203.0.113.0/24"}
            if proto != "Icmp":
                body["portRange"] = "9000-9010"
            return body
        # Azure: every rule; the platform's NSG shape or the neutral one.
        if self.rng.random() < 0.5:
            return {"source": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*", "destination": "*",
                    "destinationPortRange": str(8000 + n), "destinationAddressPrefix": "*", "protocol": "*",
                    "access": "Allow", "direction": "Inbound", "name": name, "description": "",
                    "virtualMachine": vm.id}
        return {"virtualMachine": vm.id, "name": name, "protocol": "Tcp", "portRange": ["443"],
                "cidrBlock": "198.51.100.0/24", "direction": self.rng.choice(["Inbound", "Outbound"]),
                "access": self.rng.choice(["Allow", "Deny"])}

    def rules(self, vm: Vm) -> None:
        self.seq += 1
        body = self.rule_body(vm, self.seq)
        key = self.key(0.4)
        sent = {"data": body} if self.rng.random() < 0.2 else body
        ans = self.call("POST", "/api/security-rules", EP_RULE_CREATE, body=sent, headers=key,
                        expect={201, 409}, what=f"rule create ({vm.offering.cloud}, VM status {vm.status})")
        rule_id = None
        if ans.status == 201:
            rule_id = (ans.json() or {}).get("_id")
            R.count("rules created")
        elif ans.status == 409 and code_of(ans) not in ("ILLEGAL_TRANSITION", "CONCURRENT_MODIFICATION"):
            R.violate("api", f"rule create: {code_of(ans)}: {ans.where()}")
        if key and self.replay(ans, "POST", "/api/security-rules", EP_RULE_CREATE, "rule create", body=sent,
                               headers=key):
            self.reuse("POST", "/api/security-rules", EP_RULE_CREATE, "rule create",
                       body=dict(body, name=f"{body['name']}-x"), headers=key)
        if vm.offering.cloud in ("AWS", "Kraud.Cloud") and self.rng.random() < 0.4:
            bad = self.rule_body(vm, self.seq, supported=False)
            ans = self.call("POST", "/api/security-rules", EP_RULE_CREATE, body=bad, expect={422, 409},
                            what=f"rule {vm.offering.cloud} cannot express")
            if ans.status == 422 and code_of(ans) != "UNSUPPORTED_BY_PROVIDER":
                R.violate("api", f"unsupported rule: {code_of(ans)}: {ans.where()}")
        elif rule_id and self.rng.random() < 0.3:
            ans = self.call("POST", "/api/security-rules", EP_RULE_CREATE, body=body, expect={409},
                            what="rule with a name in use")
            if ans.status == 409 and code_of(ans) not in ("RULE_NAME_TAKEN", "PRIORITY_TAKEN",
                                                          "ILLEGAL_TRANSITION"):
                R.violate("api", f"rule with a name in use: {code_of(ans)}: {ans.where()}")
        lst = self.call("GET", f"/api/virtual-machines/{vm.id}/security-rules", EP_RULE_LIST, expect={200},
                        what="rule list")
        if rule_id and lst.status == 200:
            ids = [r.get("_id") for r in (lst.json() or [])]
            if rule_id not in ids:
                R.violate("api", f"rule list: the new rule {rule_id} is missing: {lst.where()}")
        if rule_id:
            if self.rng.random() < 0.7:
                dkey = self.key(0.4)
                path = f"/api/security-rules/{rule_id}"
                ans = self.call("DELETE", path, EP_RULE_DELETE, headers=dkey, expect={200, 409},
                                what="rule delete")
                if dkey and self.replay(ans, "DELETE", path, EP_RULE_DELETE, "rule delete", headers=dkey):
                    self.reuse("DELETE", f"/api/security-rules/{random_hex()}", EP_RULE_DELETE,
                               "rule delete", headers=dkey)
            else:
                vm.rules.append(rule_id)

    def reads(self, vm: Vm) -> None:
        ans = self.call("GET", f"/api/virtual-machines/{vm.id}/credentials", EP_CREDS, expect={200},
                        what="credentials")
        if ans.status == 200:
            body = ans.json() or {}
            # A VM made with the user's own public key has no private key to show.
            if not (body.get("privateKey") or body.get("password") or body.get("publicKey")) or \
                    "no-store" not in ans.headers.get("Cache-Control", ""):
                R.violate("api", f"credentials without a login or without no-store: {ans.status} "
                                 f"{sorted(body)} {ans.headers.get('Cache-Control')}")
        limit = self.rng.choice([1, 2, 5])
        params: dict[str, Any] = {"limit": limit}
        for _ in range(MAX_PAGES):
            ans = self.call("GET", f"/api/virtual-machines/{vm.id}/activity", EP_ACTIVITY, params=params,
                            expect={200}, what="activity")
            body = ans.json()
            if ans.status != 200 or not isinstance(body, list):
                break
            if len(body) > limit:
                R.violate("api", f"activity: {len(body)} events for limit {limit}")
            cursor = ans.headers.get("X-Next-Cursor")
            if not cursor:
                break
            params = {"limit": limit, "cursor": cursor}

    def lists(self) -> None:
        variant = self.round % 6
        status_set: set[int] | None = None
        params: list[tuple[str, str]] = []
        if variant == 1:
            params = [("tag", f"c{self.idx}")]
        elif variant == 2:
            params = [("name", f"soak-c{self.idx}-")]
        elif variant == 3:
            params, status_set = [("status", "3,7")], {3, 7}
        elif variant == 4:
            params, status_set = [("status", "running"), ("status", "stopped"), ("tag", "soak")], {3, 7}
        elif variant == 5:
            params = [("tag", f"c{self.idx}"), ("name", "soak-"), ("status", "0,1,2,3,4,6,7")]
            status_set = {0, 1, 2, 3, 4, 6, 7}
        limit = self.rng.choice([2, 3, 50])
        query = params + [("limit", str(limit))]
        seen: set[str] = set()
        for page in range(MAX_PAGES):
            ans = self.call("GET", LIST_PATH, EP_LIST, params=query, expect={200}, what=f"list {params}")
            body = ans.json()
            if ans.status != 200 or not isinstance(body, list):
                break
            if len(body) > limit:
                R.violate("lists", f"list {params}: {len(body)} VMs for limit {limit}")
            for vm in body:
                if vm["_id"] in seen:
                    R.violate("lists", f"list {params}: VM {vm['_id']} on two pages")
                seen.add(vm["_id"])
                if status_set is not None and vm.get("status") not in status_set:
                    R.violate("lists", f"list {params}: VM {vm['_id']} has status {vm.get('status')}")
                for k, v in params:
                    if k == "tag" and v not in vm.get("tags", []):
                        R.violate("lists", f"list {params}: VM {vm['_id']} lacks tag {v}: {vm.get('tags')}")
                    if k == "name" and not vm.get("name", "").startswith(v):
                        R.violate("lists", f"list {params}: VM {vm['_id']} named {vm.get('name')}")
                if vm.get("status") in (5, 8):
                    R.violate("lists", f"list {params}: VM {vm['_id']} with status {vm.get('status')} listed")
            cursor = ans.headers.get("X-Next-Cursor")
            link = ans.headers.get("Link", "")
            if bool(cursor) != ('rel="next"' in link):
                R.violate("lists", f"list {params}: X-Next-Cursor {bool(cursor)} but Link {link!r}")
            if not cursor:
                break
            query = params + [("limit", str(limit)), ("cursor", cursor)]
            R.count("list pages followed")
        if self.round % 10 == 0:
            self.call("GET", f"/api/teams/{OTHER_TEAM}/projects/{OTHER_PROJECT}/virtual-machines", EP_LIST,
                      expect={404}, what="list of another team's project")

    def catalog(self) -> None:
        """The selection flow, cloud provider → provider → location → image → price, and a
        revalidation that answers 304."""
        clouds = self.call("GET", "/api/cloud-providers", EP_CATALOG, expect={200}, what="cloud providers")
        enabled = [c for c in (clouds.json() or []) if not c.get("isDisabled")]
        if not enabled:
            R.violate("catalog", "no enabled cloud provider")
            return
        cloud = self.rng.choice(enabled)
        provs = self.call("GET", f"/api/cloud-providers/{cloud['_id']}/providers", EP_CATALOG, expect={200},
                          what="providers").json() or []
        provs = [p for p in provs if not p.get("isDisabled")]
        if not provs:
            return
        prov = self.rng.choice(provs)
        locs = self.call("GET", f"/api/providers/{prov['_id']}/locations", EP_CATALOG, expect={200},
                         what="locations").json() or []
        if not locs:
            R.violate("catalog", f"provider {prov['_id']} has no locations")
            return
        loc = self.rng.choice(locs)
        path = f"/api/providers/{prov['_id']}/locations/{loc['datacenter']['name']}/images"
        images = self.call("GET", path, EP_CATALOG, expect={200}, what="images")
        tag = images.headers.get("ETag")
        if tag:
            self.call("GET", path, EP_CATALOG, headers={"If-None-Match": tag}, expect={304},
                      what="images revalidated")
        for image in (images.json() or [])[:1]:
            prices = self.call("GET", f"/api/providers/{prov['_id']}/locations/{loc['_id']}/images/"
                               f"{image['distribution']}/prices", EP_CATALOG, expect={200}, what="prices").json()
            if not prices or any(p.get("size", {}).get("_id") is None for p in prices):
                R.violate("catalog", f"prices of {image['distribution']} without a populated size: {short(str(prices))}")
        R.count("catalog chains followed")

    def costs(self) -> None:
        ans = self.call("GET", f"/api/teams/{TEAM}/costs", EP_COSTS, expect={200}, what="team costs")
        body = ans.json()
        if ans.status != 200 or not isinstance(body, dict):
            return
        vms = body.get("vms") or []
        if any(v.get("cost", 0) < 0 for v in vms):
            R.violate("costs", f"a negative cost: {short(str(vms))}")
        currencies = {v.get("currencyCode") for v in vms}
        total = round(sum(v.get("cost", 0) for v in vms), 2)
        if len(currencies) <= 1 and body.get("total") is None or (
                body.get("total") is not None and abs(body["total"] - total) > 0.001):
            R.violate("costs", f"total {body.get('total')} is not the sum {total} of {len(vms)} VMs")
        if any(v.get("status") == 8 and v.get("cost") == 0 for v in vms):
            R.violate("costs", "a deleted VM that cost nothing is listed")
        if self.round % 10 == 0:
            self.call("GET", f"/api/teams/{OTHER_TEAM}/costs", EP_COSTS, expect={404},
                      what="costs of another team")

    def admin(self) -> None:
        """An administrator pages through the team's VMs; a wrong key changes nothing."""
        limit = self.rng.choice([3, 10])
        seen: set[str] = set()
        total = None
        for page in range(1, MAX_PAGES + 1):
            ans = self.call("GET", f"/admin/api/teams/{TEAM}/virtual-machines", EP_ADMIN, token=None,
                            headers={"Api-Key": ADMIN_KEY}, params={"page": page, "limit": limit},
                            expect={200}, what="admin list")
            body = ans.json()
            if ans.status != 200 or not isinstance(body, dict):
                return
            total = body.get("totalDocs") if total is None else total
            docs = body.get("docs") or []
            if len(docs) > limit or any(d.get("status") == 8 for d in docs):
                R.violate("admin", f"admin page {page}: {len(docs)} docs for limit {limit}, or a deleted VM")
            seen.update(d["_id"] for d in docs)
            if not body.get("hasNextPage"):
                break
        if self.round % 10 == 0:
            self.call("GET", f"/admin/api/teams/{TEAM}/virtual-machines", EP_ADMIN, token=None,
                      headers={"Api-Key": ADMIN_KEY + "x"}, expect={401}, what="admin list with a wrong key")
            self.call("GET", f"/admin/api/teams/{TEAM}/virtual-machines", EP_ADMIN,
                      expect={401}, what="admin list with a user token")
        R.count("admin pages read")

    def malformed(self) -> None:
        R.count("malformed requests")
        vm = self.pick(settled=False)
        vid = vm.id if vm else random_hex()
        off = OFFERINGS[self.rng.randrange(len(OFFERINGS))]
        good = self.create_body(off, [self.name()])
        probes = [
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, raw='{"cloudProvider": ',
                              expect={400}, what="create with bad JSON"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, raw="", expect={400},
                              what="create with an empty body"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=dict(good, colour="blue"),
                              expect={400}, what="create with an unknown field"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=dict(good, hostNames=["Bad_Name"]),
                              expect={400}, what="create with a bad host name"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=dict(good, quantity=3),
                              expect={400}, what="create with a quantity that does not fit"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=dict(good, size="zz"),
                              expect={400}, what="create with a bad size id"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=good, content_type="text/plain",
                              expect={415}, what="create with text/plain"),
            lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=good, token=None,
                              expect={401}, what="create without a token"),
            lambda: self.call("GET", "/api/virtual-machines/not-an-id", EP_GET, expect={400},
                              what="get with a bad id"),
            lambda: self.call("GET", "/api/virtual-machines/%ZZ", EP_GET, expect={400},
                              what="get with an undecodable id"),
            lambda: self.call("GET", f"/api/virtual-machines/{random_hex()}", EP_GET, expect={404},
                              what="get of an unknown VM"),
            lambda: self.call("GET", f"/api/virtual-machines/{vid}", EP_GET, token="not.a.token",
                              expect={401}, what="get with a bad token"),
            lambda: self.call("GET", LIST_PATH, EP_LIST, token=None, expect={401}, what="list without a token"),
            lambda: self.call("GET", LIST_PATH, EP_LIST, params={"limit": "0"}, expect={400},
                              what="list with limit 0"),
            lambda: self.call("GET", LIST_PATH, EP_LIST, params={"cursor": "garbage"}, expect={400},
                              what="list with a bad cursor"),
            lambda: self.call("GET", LIST_PATH, EP_LIST, params={"status": "exploded"}, expect={400},
                              what="list with a bad status"),
            lambda: self.call("GET", LIST_PATH, EP_LIST, params={"colour": "blue"}, expect={400},
                              what="list with an unknown parameter"),
            lambda: self.call("PATCH", f"/api/virtual-machines/{vid}", EP_PATCH, body={}, expect={400},
                              what="PATCH with nothing"),
            lambda: self.call("PATCH", f"/api/virtual-machines/{vid}", EP_PATCH, body={"size": "x"},
                              expect={400}, what="PATCH of a field that cannot change"),
            lambda: self.call("PATCH", f"/api/virtual-machines/{vid}", EP_PATCH, raw="[1,", expect={400},
                              what="PATCH with bad JSON"),
            lambda: self.call("PUT", f"/api/virtual-machines/{vid}/explode", EP_OTHER, expect={404, 405},
                              what="an unknown action"),
            lambda: self.call("PATCH", "/api/virtual-machines", EP_OTHER, body={"tags": []}, expect={405},
                              what="PATCH of the collection"),
            lambda: self.call("PUT", f"/api/virtual-machines/{vid}/stop", EP_ACTION.replace("{action}", "stop"),
                              headers={"If-Match": "not-an-etag"}, expect={400, 412},
                              what="stop with a malformed If-Match"),
            lambda: self.call("GET", f"/api/virtual-machines/{vid}/activity", EP_ACTIVITY,
                              params={"limit": "1000"}, expect={400}, what="activity with limit 1000"),
            lambda: self.call("GET", f"/api/virtual-machines/{vid}/activity", EP_ACTIVITY,
                              params={"cursor": "x.y"}, expect={400}, what="activity with a bad cursor"),
            lambda: self.call("POST", "/api/security-rules", EP_RULE_CREATE,
                              body={"virtualMachine": vid, "name": "bad", "protocol": "Tcp", "portRange": ["99999"]},
                              expect={400}, what="rule with port 99999"),
            lambda: self.call("POST", "/api/security-rules", EP_RULE_CREATE,
                              body={"virtualMachine": "xyz", "name": "bad", "protocol": "Tcp", "portRange": ["22"]},
                              expect={400}, what="rule for a bad VM id"),
            lambda: self.call("DELETE", f"/api/security-rules/{random_hex()}", EP_RULE_DELETE, expect={404},
                              what="delete of an unknown rule"),
            lambda: self.call("GET", f"/api/virtual-machines/{vid}/credentials", EP_CREDS, token=None,
                              expect={401}, what="credentials without a token"),
            lambda: self.call("DELETE", "/api/virtual-machines/123", EP_DELETE, expect={400},
                              what="delete with a bad id"),
        ]
        if USE_KEYS and time.monotonic() >= KEYS_FROM[0]:
            note_first_key()
            probes.append(lambda: self.call("POST", "/api/virtual-machines", EP_CREATE, body=good,
                                            headers={"Idempotency-Key": "bad key with spaces"}, expect={400},
                                            what="create with a bad Idempotency-Key"))
        for _ in range(2):
            probes[self.rng.randrange(len(probes))]()

    # -- the session ----------------------------------------------------------------------------

    def one_round(self) -> None:
        self.round += 1
        # A create every 4th round (1-3 VMs): VMs live long enough to be started, stopped and
        # rebooted before a client's quota share makes it delete them.
        if self.round % 4 == 1 or not self.active():
            self.create()
        if not self.time_left():
            return
        self.lists()
        if self.round % 5 == 2:
            self.catalog()
        if self.round % 3 == 0:
            self.costs()
        if self.round % 7 == 3:
            self.admin()
        if self.round % 6 == 5:
            vm = self.pick(statuses={3, 7})
            if vm:
                self.resize(vm)
        for i in range(2):
            vm = self.pick(statuses={3, 7}) or self.pick(statuses={0, 1, 2, 3, 4, 7})
            if vm:
                if i == 0 and self.round % 2 == 0:
                    self.patch(vm)
                self.action(vm)
        vm = self.pick(statuses={0, 1, 2, 3, 4, 7})
        if vm:
            self.rules(vm)
        vm = self.pick()
        if vm:
            self.reads(vm)
        self.malformed()
        if self.round % 6 == 0:
            failed = [v for v in self.active() if v.status == 6]
            victim = (self.rng.choice(failed) if failed and self.rng.random() < 0.5 else self.pick())
            if victim:
                self.delete(victim)

    def run(self) -> None:
        for _ in range(1_000_000):
            if not self.time_left():
                break
            try:
                self.one_round()
            except ServerGone as e:
                R.violate("transport", f"client {self.idx}: {e}")
                break
            except requests.RequestException as e:
                R.violate("transport", f"client {self.idx}: {type(e).__name__}: {short(str(e), 200)}")
            except Exception:  # a bug of this script or an answer it cannot read: note it, go on
                R.violate("driver", f"client {self.idx}: {short(traceback.format_exc(), 1500)}")
                time.sleep(0.5)


def random_hex() -> str:
    return uuid.uuid4().hex[:24]


# ---------------------------------------------------------------------------------------------
# Checks after the session


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def find_vmctl_pid() -> int | None:
    pid = os.environ.get("SOAK_VMCTL_PID")
    if pid and pid.isdigit():
        return int(pid)
    port = BASE.rsplit(":", 1)[1]
    out = subprocess.run(["pgrep", "-f", f"vmctl dev --port {port}"], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if pids else None


def state_of(status: int | None) -> str:
    if status is None:
        return "gone"
    if status == 8:
        return "gone"
    return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"status {status}"


def settle(vms: list[Vm], deadline: float) -> dict[str, tuple[str, dict]]:
    """Polls every VM until it is where its last accepted action puts it, or the deadline."""
    local = threading.local()

    def look(vm: Vm) -> tuple[str, dict]:
        if not hasattr(local, "http"):
            local.http = Http()
        ans = local.http.call("GET", f"/api/virtual-machines/{vm.id}", EP_GET + " (end-state polls)",
                              expect={200, 404}, check="end-states", what="end-state poll")
        if ans.status == 404:
            return "gone", {}
        body = ans.json() if ans.status == 200 else None
        if not isinstance(body, dict):
            return f"answer {ans.status}", {}
        return state_of(body.get("status")), body

    seen: dict[str, tuple[str, dict]] = {}
    pending = list(vms)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(10_000):
            if not pending:
                break
            answers = list(pool.map(look, pending))
            still = []
            for vm, (state, body) in zip(pending, answers):
                seen[vm.id] = (state, body)
                if not reached(vm, state, body):
                    still.append(vm)
            pending = still
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    return seen


def reached(vm: Vm, state: str, body: dict) -> bool:
    want = vm.expected()
    if want == "failed":
        return state == "failed" and bool(body.get("statusReason"))
    return state == want


def scan_pending(ddb) -> list[dict]:
    items = []
    kwargs: dict[str, Any] = {
        "TableName": TABLE,
        "FilterExpression": "sk = :vm AND attribute_exists(pendingOp)",
        "ExpressionAttributeValues": {":vm": {"S": "VM"}},
    }
    for _ in range(10_000):
        out = ddb.scan(**kwargs)
        items.extend(out.get("Items", []))
        if "LastEvaluatedKey" not in out:
            break
        kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
    return items


def parse_ts(s: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None


class StreamReader:
    """Reads the table's stream from TRIM_HORIZON, then on from where it stopped."""

    def __init__(self, ddb, streams) -> None:
        self.ddb = ddb
        self.streams = streams
        self.arn: str | None = None
        self.iterators: dict[str, str | None] = {}
        self.last: dict[str, str | None] = {}
        self.seqs: dict[str, list[int]] = collections.defaultdict(list)
        self.records = 0

    def shards(self) -> list[str]:
        ids = []
        start = None
        for _ in range(1000):
            kw = {"StreamArn": self.arn}
            if start:
                kw["ExclusiveStartShardId"] = start
            desc = self.streams.describe_stream(**kw)["StreamDescription"]
            ids.extend(s["ShardId"] for s in desc.get("Shards", []))
            start = desc.get("LastEvaluatedShardId")
            if not start:
                break
        return ids

    def read(self, budget: float = 120.0) -> None:
        if self.arn is None:
            self.arn = self.ddb.describe_table(TableName=TABLE)["Table"].get("LatestStreamArn")
            if not self.arn:
                raise RuntimeError(f"table {TABLE} has no stream")
        until = time.monotonic() + budget
        for shard in self.shards():
            if shard not in self.iterators:
                self.iterators[shard] = self.streams.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                self.last.setdefault(shard, None)
            it = self.iterators[shard]
            for _ in range(100_000):
                if not it or time.monotonic() > until:
                    break
                out = self.streams.get_records(ShardIterator=it, Limit=1000)
                recs = out.get("Records", [])
                for rec in recs:
                    seq = rec["dynamodb"]["SequenceNumber"]
                    self.last[shard] = seq
                    self.seqs[shard].append(int(seq))
                self.records += len(recs)
                nxt = out.get("NextShardIterator")
                if not recs:
                    # Caught up (open shard: keep the iterator for the next look; closed: none).
                    it = nxt
                    break
                it = nxt
            self.iterators[shard] = it


def compare_checkpoint(reader: StreamReader) -> list[str]:
    if not STATUS_FILE.exists():
        return [f"{STATUS_FILE.relative_to(ROOT)} does not exist: the stream consumer writes no status "
                f"file (the new consumer has not landed?), so its checkpoint cannot be compared with the "
                f"stream's last sequence numbers {dict(reader.last)}"]
    try:
        status = json.loads(STATUS_FILE.read_text())
    except (OSError, ValueError) as e:
        return [f"{STATUS_FILE.relative_to(ROOT)} is not readable JSON: {e}"]
    problems = []
    if status.get("streamArn") != reader.arn:
        problems.append(f"{STATUS_FILE.relative_to(ROOT)} is about stream {status.get('streamArn')}, "
                        f"this run's stream is {reader.arn} (a stale file, or another run's)")
        return problems
    shards = status.get("shards") or {}
    for shard, last in reader.last.items():
        entry = shards.get(shard)
        cp = entry.get("checkpoint") if isinstance(entry, dict) else None
        if last is None:
            if cp is not None:
                problems.append(f"shard {shard}: checkpoint {cp}, but the shard has no records")
            continue
        if entry is None:
            problems.append(f"shard {shard}: not in the status file; the stream's last sequence number is {last}")
            continue
        if cp is None or str(cp) != str(last) and not (str(cp).isdigit() and int(cp) == int(last)):
            behind = sum(1 for s in reader.seqs[shard] if cp is None or not str(cp).isdigit() or s > int(cp))
            problems.append(f"shard {shard}: checkpoint {cp}, the stream's last sequence number {last} "
                            f"({behind} records not checkpointed)")
    for shard in shards:
        if shard not in reader.last:
            problems.append(f"shard {shard} is in the status file but not in the stream")
    return problems


LEVEL_RE = re.compile(r"^\s*(TRACE|DEBUG|INFO|WARN|ERROR)\s+")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+")
FIELD_START_RE = re.compile(r"\s[A-Za-z_][\w.]*=")


def normalise(line: str) -> tuple[str, str]:
    """(level, message with values blanked)."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n"))
    if line.startswith("{") and '"_aws"' in line:
        # The cleanup job's metrics (CloudWatch embedded metric format), one line per run.
        return "METRICS", re.sub(r'"Timestamp":\d+', "", line[:80])
    line = TS_RE.sub("", line)
    m = LEVEL_RE.match(line)
    level = m.group(1) if m else "OTHER"
    rest = line[m.end():] if m else line
    # Spans: `name{k=v ...}:name2{...}: message`: keep the names only (values such as routes may hold
    # braces, so a span's fields end at the first "}" followed by ":").
    rest = re.sub(r"^((?:\w+(?:\{.*?\})?:)+) ", lambda m: re.sub(r"\{.*?\}(?=:)", "", m.group(1)) + " ", rest)
    # The message runs to the first ` key=`; of the fields keep the names.
    fm = FIELD_START_RE.search(rest)
    message, fields = (rest[:fm.start()], rest[fm.start():]) if fm else (rest, "")
    names = re.findall(r"(?:^|\s)([A-Za-z_][\w.]*)=", fields)
    message = re.sub(r'"(?:[^"\\]|\\.)*"', '"_"', message)
    message = re.sub(r"'[^']*'", "'_'", message)
    message = re.sub(r"\b(?:0x)?[0-9a-fA-F]{8,}\b", "<hex>", message)
    message = re.sub(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>", message)
    message = re.sub(r"\d+(?:\.\d+)?", "<n>", message)
    message = re.sub(r"\s+", " ", message).strip()
    sig = message + (" " + " ".join(f"{n}=_" for n in names) if names else "")
    return level, sig


def log_repeats() -> tuple[list[str], list[tuple[int, str, str]]]:
    try:
        lines = RUN_LOG.read_text(errors="replace").splitlines()
    except OSError as e:
        return [f"cannot read the run's log {RUN_LOG}: {e}"], []
    start = next((i + 1 for i, l in enumerate(lines) if "VM API listening on" in l), None)
    if start is None:
        return [f"{RUN_LOG} has no 'VM API listening on' line"], []
    counts: collections.Counter = collections.Counter()
    example: dict[tuple[str, str], str] = {}
    for line in lines[start:]:
        if not line.strip():
            continue
        key = normalise(line)
        counts[key] += 1
        example.setdefault(key, line)
    problems = []
    for (level, sig), n in counts.most_common():
        if level in ("WARN", "ERROR", "OTHER") and n > LOG_REPEAT_LIMIT:
            problems.append(f"{level} line repeated {n} times: {sig}\n      e.g. {short(example[(level, sig)], 400)}")
    top = [(n, level, sig) for (level, sig), n in counts.most_common(12)]
    return problems, top


def failure_destination() -> Path | None:
    """The consumer's on-failure destination file, as the run announced it (if it has one)."""
    try:
        text = RUN_LOG.read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r"on-failure destination (\S+)", text) or re.search(r"on_failure=(\S+)", text)
    if not m:
        return None
    path = Path(m.group(1).rstrip(",;"))
    return path if path.is_absolute() else ROOT / path


def line_count(path: Path | None) -> int:
    try:
        return len(path.read_text(errors="replace").splitlines()) if path else 0
    except OSError:
        return 0


def provisioning_lag(session_start: dt.datetime) -> list[str]:
    """From the run's log: how long creates took from the request (the VM id's timestamp) to the
    provisioner's "cloud operation finished ... op="create"", per minute of the run. Reported, not
    asserted: a growing lag means the provisioner falls behind the session."""
    try:
        lines = RUN_LOG.read_text(errors="replace").splitlines()
    except OSError:
        return []
    pat = re.compile(r'^(\S+Z)\s+INFO .*cloud operation finished vm=([0-9a-f]{24}) op="?create')
    buckets: dict[int, list[float]] = collections.defaultdict(list)
    for line in lines:
        m = pat.match(line)
        if not m:
            continue
        at = parse_ts(m.group(1))
        if at is None:
            continue
        lag = at.timestamp() - int(m.group(2)[:8], 16)
        buckets[int((at - session_start).total_seconds() // 60)].append(lag)
    rows = ["| minute of the run | creates finished | lag p50 s | lag max s |", "|---:|---:|---:|---:|"]
    for minute in sorted(buckets):
        lags = buckets[minute]
        rows.append(f"| {minute + 1} | {len(lags)} | {percentile(lags, 50):.0f} | {max(lags):.0f} |")
    return rows if len(rows) > 2 else []


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def endpoint_table() -> list[str]:
    rows = ["| endpoint | requests | status codes | p50 ms | p99 ms |", "|---|---:|---|---:|---:|"]
    for ep in sorted(R.latency, key=lambda e: (e.split(" ", 1)[1], e)):
        lat = R.latency[ep]
        codes = " ".join(f"{c}×{n}" for c, n in sorted(R.codes[ep].items(), key=lambda x: str(x[0])))
        rows.append(f"| `{ep}` | {len(lat)} | {codes} | {percentile(lat, 50):.1f} | {percentile(lat, 99):.1f} |")
    all_lat = [x for v in R.latency.values() for x in v]
    all_codes: collections.Counter = collections.Counter()
    for c in R.codes.values():
        all_codes.update(c)
    codes = " ".join(f"{c}×{n}" for c, n in sorted(all_codes.items(), key=lambda x: str(x[0])))
    rows.append(f"| **all** | {len(all_lat)} | {codes} | {percentile(all_lat, 50):.1f} | {percentile(all_lat, 99):.1f} |")
    return rows


def main() -> int:
    started_wall = dt.datetime.now(dt.timezone.utc)
    vmctl = find_vmctl_pid()
    if vmctl is None or rss_kb(vmctl) is None:
        print(f"soak: cannot find the `vmctl dev` process (pid {vmctl})", file=sys.stderr)
        return 2
    health = Http().call("GET", "/health", EP_HEALTH, token=None, expect={200}, what="health")
    if health.status != 200:
        print(f"soak: /health answered {health.status}", file=sys.stderr)
        return 2
    print(f"soak: {MINUTES:g} min, {CLIENTS} clients, seed {SEED}, against {BASE} (vmctl dev pid {vmctl}); "
          f"sizes: {', '.join(o.label for o in OFFERINGS)}", flush=True)
    dead_letters = failure_destination()
    dead_before = line_count(dead_letters)
    t0 = time.monotonic()
    deadline = t0 + DURATION
    KEYS_FROM[0] = t0 + KEY_FREE_SECONDS
    clients = [Client(i + 1, deadline) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    rss_ref = rss_peak = None
    rss_samples: list[tuple[float, int]] = []
    next_report = t0 + 30
    for _ in range(10_000_000):
        now = time.monotonic()
        if now >= deadline or R.stop.is_set():
            break
        if rss_ref is None and now - t0 >= RSS_SAMPLE_AT:
            rss_ref = rss_kb(vmctl)
            rss_samples.append((now - t0, rss_ref or 0))
            print(f"soak: RSS of vmctl dev at {now - t0:.0f} s: {rss_ref} kB (reference)", flush=True)
        if now >= next_report:
            next_report += 30
            kb = rss_kb(vmctl)
            rss_samples.append((now - t0, kb or 0))
            with R.lock:
                total = R.total
                made = R.counters["VMs created"]
                v = sum(len(x) for x in R.violations.values())
            print(f"soak: {now - t0:.0f} s: {total} requests, {made} VMs created, {v} violations so far, "
                  f"RSS {kb} kB", flush=True)
        time.sleep(min(0.5, max(0.01, deadline - now)))
    for c in clients:
        c.join(timeout=REQUEST_TIMEOUT * 2 + 10)
    ended = time.monotonic()
    stuck = [c.name for c in clients if c.is_alive()]
    if stuck:
        R.violate("driver", f"clients still busy {REQUEST_TIMEOUT * 2 + 10} s after the session's end: {stuck}")
    rss_end = rss_kb(vmctl)
    rss_peak = max([kb for _, kb in rss_samples] + [rss_end or 0])
    print(f"soak: session over after {ended - t0:.0f} s: {R.total} requests; settling "
          f"(up to {SETTLE_SECONDS} s) ...", flush=True)

    # 1. end states
    with ALL_LOCK:
        vms = list(ALL_VMS)
    seen = settle(vms, ended + SETTLE_SECONDS)
    by_size: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    end_problems = []
    for vm in vms:
        state, body = seen.get(vm.id, ("not polled", {}))
        ok = reached(vm, state, body)
        by_size[vm.offering.label][(vm.expected(), state, ok)] += 1
        if not ok:
            extra = f", statusReason {body.get('statusReason')!r}" if body.get("statusReason") else ""
            if vm.expected() == "failed" and state == "failed":
                extra += " (no statusReason)"
            end_problems.append(
                f"VM {vm.id} ({vm.name}, {vm.offering.label}, client {vm.client}, "
                f"{'made with' if vm.with_key else 'made without'} Idempotency-Key, last accepted action "
                f"{vm.last_action} {ended - vm.last_action_at:.0f} s before the end): expected {vm.expected()}, "
                f"saw {state}{extra}")
    if end_problems:
        # The overview first, then each VM.
        for label in sorted(by_size):
            for (want, state, ok), n in sorted(by_size[label].items()):
                if not ok:
                    R.violate("end-states", f"{n} VMs of {label}: expected {want}, saw {state}")
        late = [vm for vm in vms if not reached(vm, *seen.get(vm.id, ("not polled", {})))]
        late_ids = {vm.id for vm in late}
        if FIRST_KEY:
            before = [vm for vm in vms if vm.last_action_at < FIRST_KEY[0]]
            after = [vm for vm in vms if vm.last_action_at >= FIRST_KEY[0]]
            R.violate("end-states", f"VMs whose last accepted action came before the first Idempotency-Key request "
                                    f"({FIRST_KEY[0] - t0:.1f} s into the session): {len(before)}, of them "
                                    f"{sum(1 for v in before if v.id in late_ids)} not settled; after it: {len(after)}, "
                                    f"of them {sum(1 for v in after if v.id in late_ids)} not settled")
        stuck0 = [vm for vm in late if seen.get(vm.id, ("", {}))[0] == "creating"]
        if stuck0:
            ages = sorted(ended - vm.last_action_at for vm in stuck0)
            R.violate("end-states", f"{len(stuck0)} VMs still creating (status 0) {SETTLE_SECONDS} s after the end, "
                                    f"created {ages[0]:.0f}-{ages[-1]:.0f} s before it: the provisioner has not "
                                    f"taken them up (stalled, or behind: see the provisioning lag and the log check)")
    for p in end_problems:
        R.violate("end-states", p)

    # 2. pending operations older than 60 s
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                    region_name="us-east-1")
    ddb = session.client("dynamodb", endpoint_url=DDB_URL)
    streams = session.client("dynamodbstreams", endpoint_url=DDB_URL)
    pending_old = []
    try:
        now_wall = dt.datetime.now(dt.timezone.utc)
        for item in scan_pending(ddb):
            vid = item["pk"]["S"].removeprefix("VM#")
            op = item["pendingOp"].get("M", {})
            at = parse_ts(op.get("requestedAt", {}).get("S", ""))
            age = (now_wall - at).total_seconds() if at else None
            if age is None or age > PENDING_MAX_AGE:
                pending_old.append(
                    f"VM {vid}: pendingOp {op.get('op', {}).get('S')} requested at "
                    f"{op.get('requestedAt', {}).get('S')} ({'?' if age is None else f'{age:.0f}'} s ago, "
                    f"attempt {op.get('attempt', {}).get('N')}), status {item.get('status', {}).get('N')}")
    except Exception as e:  # noqa: BLE001
        pending_old.append(f"cannot scan {TABLE} on {DDB_URL}: {e}")
    for p in pending_old:
        R.violate("pending-ops", p)

    # 3. the consumer's checkpoint against the stream
    reader = StreamReader(ddb, streams)
    cp_problems: list[str] = []
    cp_deadline = time.monotonic() + CHECKPOINT_WAIT
    for _ in range(100):
        try:
            reader.read()
            cp_problems = compare_checkpoint(reader)
        except Exception as e:  # noqa: BLE001
            cp_problems = [f"cannot read the stream of {TABLE}: {e}"]
        if not cp_problems or time.monotonic() >= cp_deadline:
            break
        time.sleep(1)
    for p in cp_problems:
        R.violate("checkpoint", p)
    if dead_letters:
        lines = (dead_letters.read_text(errors="replace").splitlines() if dead_letters.exists() else [])
        for line in lines[dead_before:]:
            R.violate("checkpoint", f"a record went to the consumer's on-failure destination "
                                    f"{dead_letters.relative_to(ROOT) if dead_letters.is_relative_to(ROOT) else dead_letters}: "
                                    f"{short(line, 400)}")

    # 4. 5xx and 503s
    for e in R.server_errors:
        R.violate("5xx", e)
    n503 = len(R.unavailable)
    if n503:
        share = n503 / max(R.total, 1)
        if share >= 0.001:
            R.violate("503", f"{n503} answers 503 of {R.total} requests ({share:.3%}; allowed < 0.1 %)")
        for u in R.unavailable:
            if not u["retry_after"]:
                R.violate("503", f"503 without Retry-After: {u['answer']}")
            if not u["retried_ok"]:
                R.violate("503", f"503 not retried successfully: {u['answer']}")
    for e in R.transport_errors[:20]:
        R.violate("transport", e)

    # 5. repeated log lines
    repeat_problems, top_lines = log_repeats()
    for p in repeat_problems:
        R.violate("log-repeats", p)

    # 6. RSS
    if rss_ref is None:
        rss_ref = rss_end
    if rss_end is None:
        R.violate("rss", f"vmctl dev (pid {vmctl}) is gone at the end")
    elif rss_ref and rss_end > RSS_FACTOR * rss_ref:
        R.violate("rss", f"RSS of vmctl dev grew from {rss_ref} kB (at {RSS_SAMPLE_AT:.0f} s) to {rss_end} kB "
                         f"at the end ({rss_end / rss_ref:.2f}x; allowed {RSS_FACTOR}x)")

    # 7. quota refusals should not dominate
    attempts = R.counters["create attempts"]
    if attempts and R.counters["quota refusals"] * 2 > attempts:
        R.violate("api", f"quota refusals dominate: {R.counters['quota refusals']} of {attempts} creates")

    # ---- report
    table = endpoint_table()
    size_rows = ["| size | expected | seen | VMs | ok |", "|---|---|---|---:|---|"]
    for label in sorted(by_size):
        for (want, state, ok), n in sorted(by_size[label].items()):
            size_rows.append(f"| {label} | {want} | {state} | {n} | {'yes' if ok else '**NO**'} |")
    checks = [
        ("end-states", f"every VM where its last accepted action puts it within {SETTLE_SECONDS} s ({len(vms)} VMs)"),
        ("pending-ops", f"no pendingOp older than {PENDING_MAX_AGE} s"),
        ("checkpoint", "consumer checkpoint = stream's last sequence number, per shard; no record sent to "
                       "the on-failure destination"),
        ("5xx", "no 5xx but 503"),
        ("503", "503 only with Retry-After, < 0.1 %, each retried successfully"),
        ("log-repeats", f"no WARN/ERROR/unlevelled log line repeated more than {LOG_REPEAT_LIMIT} times"),
        ("rss", f"RSS at the end ≤ {RSS_FACTOR}x RSS at {RSS_SAMPLE_AT:.0f} s"),
        ("idempotency", "replays identical, reused keys refused"),
        ("if-match", "fresh If-Match accepted, stale 412"),
        ("error-bodies", "4xx answers in the JSON error shape"),
        ("lists", "list filters and paging honoured"),
        ("api", "other answers as documented"),
        ("transport", "no connection errors or timeouts"),
        ("driver", "the driver itself ran without errors"),
    ]
    counters = ", ".join(f"{k}: {v}" for k, v in sorted(R.counters.items()))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " plus uncommitted changes"
    head = (f"Soak run of {started_wall:%Y-%m-%d %H:%M} UTC, commit `{commit}`: {MINUTES:g} min, {CLIENTS} clients, "
            f"seed {SEED}; {R.total} requests, {len(vms)} VMs made; RSS of `vmctl dev` {rss_ref} kB at "
            f"{RSS_SAMPLE_AT:.0f} s, {rss_end} kB at the end (peak sample {rss_peak} kB); stream records read: "
            f"{reader.records}.")
    failed_checks = [c for c, _ in checks if R.violations.get(c)]
    md = [f"# Soak summary", "", head, "", "## Requests per endpoint", ""] + table + \
         ["", "## End states per size", ""] + size_rows + ["", "## Checks", ""]
    for c, desc in checks:
        n = len(R.violations.get(c, []))
        md.append(f"- {'**FAIL**' if n else 'pass'} `{c}`: {desc}" + (f" ({n} violations)" if n else ""))
    lag_rows = provisioning_lag(started_wall)
    if lag_rows:
        md += ["", "## Provisioning lag (create request to running/failed, from the run's log; not asserted)", ""]
        md += lag_rows
    md += ["", f"Counters: {counters}.", "", "Most frequent log lines (normalised; INFO not asserted):", ""]
    md += [f"- {n} × {level} {short(sig, 160)}" for n, level, sig in top_lines]
    if failed_checks:
        md += ["", "## Violations (first 10 per check)", ""]
        for c in failed_checks:
            for v in R.violations[c][:10]:
                md.append(f"- `{c}`: {short(v, 600)}")
    md.append("")
    SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY_FILE.write_text("\n".join(md))

    print()
    print(head)
    print()
    print("\n".join(table))
    print()
    print("End states per size (expected -> seen):")
    print("\n".join(size_rows))
    print()
    if lag_rows:
        print("Provisioning lag (create request to running/failed, from the run's log; not asserted):")
        print("\n".join(lag_rows))
        print()
    print(f"Counters: {counters}")
    print("Most frequent log lines (normalised; INFO/DEBUG not asserted):")
    for n, level, sig in top_lines:
        print(f"  {n:7d} x {level:5s} {short(sig, 160)}")
    print()
    for c, desc in checks:
        vs = R.violations.get(c, [])
        print(f"[{'FAIL' if vs else 'pass'}] {c}: {desc}" + (f" -- {len(vs)} violations" if vs else ""))
        limit = 40
        for v in vs[:limit]:
            print(f"    - {v}")
        if len(vs) > limit:
            print(f"    ... and {len(vs) - limit} more")
    print()
    print(f"summary written to {SUMMARY_FILE.relative_to(ROOT)}")
    if failed_checks:
        print(f"SOAK FAILED: {len(failed_checks)} checks failed: {', '.join(failed_checks)}")
        return 1
    print("SOAK PASSED: every check held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
