"""Drives a Python client generated from openapi.json against the local server:
create -> get -> list -> stop -> delete of one VM, plus the error bodies of a 401 and a 404.

Run by scripts/openapi-client.sh: `python openapi_client_test.py URL TOKEN MODELS_DIR`, with the
generated package `vmapi_client` importable. Prints one line per step and a closing
`test result:` line in cargo's format (counted by `make test`'s summary)."""

import os
import re
import sys
import time
import uuid

import vmapi_client
from vmapi_client import (
    ApiClient, Configuration, CreateVmBody, CreateVmRequest, Datacenter, Image, ImageVersion,
    Region, VirtualMachinesApi, VmStatus,
)
from vmapi_client.exceptions import ApiException

BASE, TOKEN, MODELS = sys.argv[1], sys.argv[2], sys.argv[3]
TEAM, PROJECT = "6548a41f38406c14db33b61e", "6548a41f38406c14db33b62c"
NAME = "client-%s" % uuid.uuid4().hex[:8]
state = {}
results = []


def step(fn):
    started = time.monotonic()
    try:
        fn()
    except Exception as e:  # one failed step stops the run: later steps need its VM
        results.append(False)
        print("test openapi_client::%s ... FAILED (%.1f s): %r" % (fn.__name__, time.monotonic() - started, e))
        raise
    results.append(True)
    print("test openapi_client::%s ... ok (%.1f s)" % (fn.__name__, time.monotonic() - started))


def api(token=TOKEN):
    config = Configuration(host=BASE, access_token=token)
    return VirtualMachinesApi(ApiClient(config))


def wait_for(vm_id, wanted, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        vm = api().get_vm(vm_id)
        if vm.status == wanted:
            return vm
        assert time.monotonic() < deadline, "VM %s stayed %s, not %s" % (vm_id, vm.status_name, wanted)
        time.sleep(0.25)


def generated_model_names():
    """Every model has a name of the document: no anonymous or per-status classes."""
    files = sorted(f[:-3] for f in os.listdir(MODELS) if f.endswith(".py") and f != "__init__.py")
    anonymous = [f for f in files if re.search(r"inline|one_of|any_of|all_of|\d{3}_response|_request_\w*of", f)]
    assert not anonymous, "anonymous models: %s" % anonymous
    for expected in ("create_vm_request", "create_vm_body", "wrapped_create_vm_request",
                     "create_rule_request", "create_rule_body", "update_vm_request", "error",
                     "auth_error", "virtual_machine", "action_result"):
        assert expected in files, "no model %s among %s" % (expected, files)
    assert vmapi_client.CreateVmRequest is CreateVmRequest


def create():
    request = CreateVmRequest(
        cloud_provider="6548a383e2442d14b6bf9685", team=TEAM, project=PROJECT, host_names=[NAME],
        provider="6548a383e2442d14b6bf968b", size="6548a383e2442d14b6bf9745",
        price="6548a383e2442d14b6bf970b", subscription="", tags=["client"], access=None,
        region=Region(physical_location="Germany", datacenter=Datacenter(name="berlin", display_name="Berlin")),
        image=Image(distribution="Ubuntu", version=ImageVersion(name="20_04-lts", display_name="20.04 LTS")),
        auth_method=1, quantity=1,
    )
    answer = api().create_vm_with_http_info(CreateVmBody(request))
    assert answer.status_code == 201, answer.status_code
    assert len(answer.data) == 1, answer.data
    vm = answer.data[0]
    assert re.fullmatch(r"[0-9a-f]{24}", vm.id), vm.id
    assert vm.name == NAME and vm.tags == ["client"], vm
    assert vm.status is VmStatus.creating, vm.status
    assert vm.status_name == "creating", vm.status_name
    state["id"] = vm.id


def get():
    answer = api().get_vm_with_http_info(state["id"])
    assert answer.status_code == 200
    headers = {k.lower(): v for k, v in answer.headers.items()}
    assert re.fullmatch(r'"[0-9]+"', headers.get("etag", "")), headers
    vm = answer.data
    assert vm.id == state["id"] and vm.name == NAME, vm
    # GET populates the references.
    assert vm.team.actual_instance.id == TEAM, vm.team
    assert vm.project.actual_instance.id == PROJECT, vm.project
    wait_for(state["id"], VmStatus.running)


def list_():
    vms = api().list_vms(TEAM, PROJECT, name=NAME, limit=10)
    assert [v.id for v in vms] == [state["id"]], vms
    assert vms[0].status is VmStatus.running and vms[0].status_name == "running", vms[0]
    assert vms[0].ip_configurations, "a running VM has addresses"


list_.__name__ = "list"


def stop():
    result = api().stop_vm(state["id"])
    assert result.vm_id == state["id"], result
    assert result.status in (VmStatus.stopping, VmStatus.stopped) and result.status_name in ("stopping", "stopped"), result
    vm = wait_for(state["id"], VmStatus.stopped)
    assert vm.status_name == "stopped"


def delete():
    result = api().delete_vm(state["id"])
    assert result.vm_id == state["id"] and result.status is VmStatus.deleting, result
    assert result.status_name == "deleting", result
    assert api().list_vms(TEAM, PROJECT, name=NAME) == [], "a deleted VM leaves the list"
    deadline = time.monotonic() + 60
    while True:
        try:
            api().get_vm(state["id"])
        except ApiException as e:
            assert e.status == 404, e.status
            assert e.data.code == "VM_NOT_FOUND" and e.data.status_code == 404, e.data
            return
        assert time.monotonic() < deadline, "the VM never went"
        time.sleep(0.25)


def unauthorized():
    try:
        api(token="not-a-token").get_vm(state["id"])
    except ApiException as e:
        assert e.status == 401, e.status
        assert e.data.actual_instance.code == "UNAUTHORIZED", e.data
    else:
        raise AssertionError("a bad token was accepted")


try:
    for f in (generated_model_names, create, get, list_, stop, delete, unauthorized):
        step(f)
finally:
    passed, failed = results.count(True), results.count(False)
    print("test result: %s. %d passed; %d failed; 0 ignored; 0 measured; 0 filtered out"
          % ("ok" if failed == 0 else "FAILED", passed, failed))
