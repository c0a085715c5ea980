"""An in-memory Kubernetes API server for tests and `aiassistant-operator dev` — test and dev tooling only.

Built on kmock 0.8 (pinned): its aiohttp server, request parsing, error rendering and the bundled
discovery data of built-in resources. Stock kmock 0.8 keeps objects as plain merged dicts, which kopf
and kubectl trip over (see docs in DESIGN.md "Test substrate"), so this module replaces the object
store and adds what the real apiserver does and our operator depends on:

- metadata on every write: ``resourceVersion`` (one global counter), ``uid``, ``creationTimestamp``,
  ``generation`` (bumped when anything outside metadata/status changes), namespace from the URL,
  ``generateName``; a no-op write changes nothing and emits no event;
- ``/status`` separation for resources with a status subresource; optimistic locking (409) on a stale
  ``metadata.resourceVersion``; PUT, and PATCH as JSON patch, merge patch and strategic merge (lists of
  named items merge by name);
- lists with kind/apiVersion/resourceVersion; label and field selectors; watches that resume from a
  resourceVersion (410 when too old), JSON content type, BOOKMARKs incl. the initial-events-end one;
- deletion with finalizers and garbage collection of dependents by ``ownerReferences`` (cascade);
- CRDs (given at start or POSTed): discovery, defaulting and pruning by the structural schema,
  ``jsonschema`` validation and ``x-kubernetes-validations`` CEL rules (``cel-python``) answering 422
  like the apiserver, with validation ratcheting (unchanged values stay accepted on update);
  server-side printer columns (``kubectl get`` tables);
- kubectl: the core group named ``v1`` in discovery, no shortNames on subresources, enough OpenAPI v3
  for ``kubectl apply`` to validate server-side (``fieldValidation=Strict``), Secret ``stringData``;
- for tests: fault injection (``emu.fail("patch", "deployments", status=409, times=2)``), an audit
  log of object requests (``emu.audit``), direct object access (``get_object``, ``put_object``).

Not emulated: authentication/RBAC, admission webhooks, server-side apply, kubelet/controllers (nothing
runs pods; tests and `dev` set Deployment status themselves).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import itertools
import json
import pathlib
import random
import re
import string
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import aiohttp.web
import attrs
import celpy
import jsonschema
import kmock
import yaml
from kmock._internal import rendering  # Request type of kmock's parsed requests

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-scoped), name
Event = tuple[Obj, bytes]  # a watch event and its JSON line
HISTORY = 20_000  # watch events kept for resumption; older resourceVersions get 410 Gone
CRD_RESOURCE = ("apiextensions.k8s.io", "customresourcedefinitions")
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details)


@attrs.define
class _Fault:
    verb: str
    plural: str
    status: int
    times: int
    subresource: str | None


@attrs.define
class _CRDInfo:
    """What the emulator enforces for one custom resource version."""

    schema: Obj
    validator: jsonschema.Draft7Validator
    columns: list[Obj]


class _Invalid(Exception):
    """Schema/CEL violations, collected as apiserver-style causes."""

    def __init__(self, causes: list[Obj]) -> None:
        super().__init__("; ".join(f"{c['field']}: {c['message']}" for c in causes))
        self.causes = causes


@attrs.frozen
class _Request:
    """An object-level API request (kmock 0.8's path parser fails on /api/v1/namespaces)."""

    raw: aiohttp.web.BaseRequest
    method: str
    verb: str  # create, update, patch, delete, get, list, watch
    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None
    params: Mapping[str, str]
    headers: Mapping[str, str]
    data: Any

    @classmethod
    async def parse(cls, raw: aiohttp.web.BaseRequest) -> _Request | None:
        parts = raw.path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None  # discovery, /version, /openapi...: kmock's scaffold
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        name = rest[1] if len(rest) > 1 else None
        body = await raw.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = yaml.safe_load(body)
        params = dict(raw.query)
        method = raw.method.upper()
        if method == "GET" and params.get("watch") in ("true", "1"):
            verb = "watch"
        else:
            verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")
            verb = verb or ("get" if name else "list")
        return cls(
            raw=raw,
            method=method,
            verb=verb,
            group=group,
            version=version,
            plural=rest[0],
            namespace=namespace,
            name=name,
            subresource="/".join(rest[2:]) or None,
            params=params,
            headers=dict(raw.headers),
            data=data,
        )


@attrs.define(kw_only=True)
class Emulator(kmock.KubernetesScaffold):
    """A stateful Kubernetes API over kmock's scaffold (discovery, errors, HTTP)."""

    _objects: dict[Key, Obj] = attrs.field(factory=dict, init=False)
    _rv: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _last_rv: int = attrs.field(default=0, init=False)
    # Events are kept with their JSON encoding: each watcher writes the same bytes.
    _history: dict[tuple[str, str], deque[tuple[int, Event]]] = attrs.field(factory=dict, init=False)
    _watchers: dict[tuple[str, str], set[asyncio.Queue[Event | None]]] = attrs.field(factory=dict, init=False)
    _infos: dict[tuple[str, str, str], kmock.ResourceInfo] = attrs.field(factory=dict, init=False)
    _crds: dict[tuple[str, str], _CRDInfo] = attrs.field(factory=dict, init=False)
    _faults: list[_Fault] = attrs.field(factory=list, init=False)
    # (User-Agent, verb, group, resource[/subresource]) of every object request, e.g. to check RBAC.
    audit: list[tuple[str, str, str, str]] = attrs.field(factory=list, init=False)
    _cel: celpy.Environment = attrs.field(factory=celpy.Environment, init=False)
    _cel_cache: dict[str, Any] = attrs.field(factory=dict, init=False)
    _cel_results: dict[tuple[str, str, Any], bool] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.resources.load_bundled()
        self.fallback["get", re.compile(r"/openapi/v3/.+")] << self._serve_openapi_group
        self.fallback["get /openapi/v3"] << self._serve_openapi_root
        for ns in ("default", "kube-system"):
            self.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # ---------------------------------------------------------------- running

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, *, crds: Iterable[str | pathlib.Path | Mapping[str, Any]] = (), port: int | None = None
    ) -> AsyncIterator[Emulator]:
        """Serve on 127.0.0.1 (a random port unless given); ``emu.url`` is the API base URL."""
        emu = cls()
        for crd in crds:
            emu.add_crd(crd)
        async with emu, kmock.Server(emu, port=port):
            try:
                yield emu
            finally:
                emu._close_watches()

    @property
    def base_url(self) -> str:
        return str(self.url).rstrip("/")

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default") -> pathlib.Path:
        """A kubeconfig for kubectl/kopf/kubernetes clients pointing at this emulator (no auth)."""
        path = pathlib.Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.base_url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    # ---------------------------------------------------------------- test API

    def fail(
        self, verb: str, plural: str, *, status: int = 500, times: int = 1, subresource: str | None = None
    ) -> None:
        """Answer the next `times` requests of `verb` (create/update/patch/delete/get/list) on `plural`
        (optionally one subresource, e.g. "status") with `status` before touching any object."""
        self._faults.append(_Fault(verb, plural, status, times, subresource))

    def get_object(self, plural: str, namespace: str | None, name: str, group: str = "") -> Obj | None:
        found = self._objects.get((group, plural, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    def list_objects(self, plural: str, namespace: str | None = None, group: str = "") -> list[Obj]:
        return [
            copy.deepcopy(obj)
            for (g, p, ns, _), obj in self._objects.items()
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]

    def put_object(self, obj: Mapping[str, Any]) -> Obj:
        """Create or replace an object directly (no validation, no faults) — e.g. to fake a kubelet."""
        group, _, plural, info = self._resolve_kind(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata", {})
        key = (group, plural, meta.get("namespace", "") if info.namespaced else "", meta["name"])
        new = copy.deepcopy(dict(obj))
        old = self._objects.get(key)
        if old is None:
            return self._insert(key, new)
        new["metadata"] = {**old["metadata"], **new["metadata"]}
        return self._commit(key, old, new)

    def add_crd(self, crd: str | pathlib.Path | Mapping[str, Any]) -> None:
        """Register a CustomResourceDefinition (a dict, or a path to its YAML)."""
        if not isinstance(crd, Mapping):
            crd = yaml.safe_load(pathlib.Path(crd).read_text())
        assert isinstance(crd, Mapping)
        self._register_crd(crd)
        key = (*CRD_RESOURCE, "", crd["metadata"]["name"])
        if key not in self._objects:
            self._insert(key, copy.deepcopy(dict(crd)))

    # ---------------------------------------------------------------- dispatch

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Object requests are served here; discovery and everything else by kmock."""
        request = await _Request.parse(raw)
        if request is None:
            return await super().__call__(raw)
        try:
            return await self._dispatch(request)
        except kmock.KubernetesError as e:
            return await self._render_error(e)

    async def _dispatch(self, request: _Request) -> aiohttp.web.StreamResponse:
        group, version, plural = request.group, request.version, request.plural
        info = self._info(group, version, plural)
        verb = request.verb
        resource = f"{plural}/{request.subresource}" if request.subresource else plural
        self.audit.append((request.headers.get("User-Agent", ""), verb, group, resource))
        self._inject_fault(verb, plural, request.subresource)
        if info.namespaced and request.namespace is None and verb not in ("list", "watch", "create"):
            raise _error(404, "NotFound", f"{plural} is namespaced: use /namespaces/<ns>/{plural}")
        if verb == "watch":
            return await self._serve_watch(request, info)
        if verb == "list":
            return self._serve_list(request)
        if verb == "create":
            ns = request.namespace or "" if info.namespaced else ""
            if info.namespaced and not ns:
                raise _error(400, "BadRequest", f"{plural} is namespaced: POST to /namespaces/<ns>/{plural}")
            return aiohttp.web.json_response(self._create(request, info, ns), status=201)
        if request.name is None:
            raise _error(405, "MethodNotAllowed", f"{request.method} needs an object name")
        key = (group, plural, request.namespace or "" if info.namespaced else "", request.name)
        if verb == "get":
            return aiohttp.web.json_response(self._existing(key))
        if verb == "delete":
            return aiohttp.web.json_response(self._delete(key, request.params.get("propagationPolicy")))
        return aiohttp.web.json_response(self._update(key, info, request))

    async def _serve_server_version(self, request: rendering.Request) -> rendering.Payload:
        # kmock reports v1.26 (k3s); kubectl >= 1.27 uses server-side field validation only for >= 1.27.
        return {
            "major": "1",
            "minor": "35",
            "gitVersion": "v1.35.0-aiassistant-emulator",
            "platform": "linux/amd64",
        }

    async def _serve_openapi_root(self, request: rendering.Request) -> rendering.Payload:
        groups = {(r.group or "", r.version) for r in self.resources if r.plural and r.version}
        paths = {_gv_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_gv_path(g, v)}"} for g, v in groups}
        return {"paths": paths}

    async def _serve_openapi_group(self, request: rendering.Request) -> rendering.Payload:
        """Just enough OpenAPI v3 for kubectl to see that the server validates fields itself
        (PATCH takes `fieldValidation`): `kubectl apply` then needs no client-side schema."""
        parts = request.url.path.removeprefix("/openapi/v3/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        paths: Obj = {}
        for res in self.resources:
            if (res.group or "", res.version) != (group, version) or not res.plural:
                continue
            info = self.resources[res]
            gvk = {"group": group, "version": version, "kind": info.kind or res.plural}
            param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
            scope = "/namespaces/{namespace}" if info.namespaced else ""
            paths[f"/{_gv_path(group, version)}{scope}/{res.plural}/{{name}}"] = {
                "patch": {"x-kubernetes-group-version-kind": gvk, "parameters": [param], "responses": {}}
            }
        return {"openapi": "3.0.0", "info": {"title": "emulator", "version": "v1"}, "paths": paths}

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        # kmock 0.8 names the core group "/v1" and copies shortNames onto subresources: kubectl
        # then loses configmaps/secrets/... and maps "po"/"ev" elsewhere.
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version
        found = [r for r in self.resources if (r.group, r.version) == (group, version) and r.plural]
        if not found:
            raise kmock.KubernetesResourceNotFoundError()
        resources: list[Obj] = []
        for res in found:
            info = self.resources[res]
            kind = info.kind or str(res.plural).capitalize()
            resources.append(
                {
                    "name": res.plural,
                    "singularName": info.singular or kind.lower(),
                    "namespaced": bool(info.namespaced),
                    "kind": kind,
                    "verbs": sorted(info.verbs) or VERBS,
                    "shortNames": sorted(info.shortnames),
                    "categories": sorted(info.categories),
                }
            )
            for sub in sorted(info.subresources):
                resources.append(
                    {
                        "name": f"{res.plural}/{sub}",
                        "singularName": "",
                        "namespaced": bool(info.namespaced),
                        "kind": kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _inject_fault(self, verb: str, plural: str, subresource: str | None) -> None:
        for fault in self._faults:
            if (fault.verb, fault.plural) == (verb, plural) and fault.times > 0:
                if fault.subresource is None or fault.subresource == subresource:
                    fault.times -= 1
                    reason = {409: "Conflict", 429: "TooManyRequests"}.get(fault.status, "InternalError")
                    raise _error(fault.status, reason, f"injected fault: {verb} {plural}")

    # ---------------------------------------------------------------- resources

    def _info(self, group: str, version: str, plural: str) -> kmock.ResourceInfo:
        info = self._infos.get((group, version, plural))
        if info is None:  # kmock's resource lookups are slow (runtime protocol checks): cache them
            resource = kmock.resource(group, version, plural)
            if resource not in self.resources:
                raise _error(404, "NotFound", f"the server could not find the requested resource ({plural})")
            info = self._infos[group, version, plural] = self.resources[resource]
        return info

    def _resolve_kind(self, api_version: str, kind: str) -> tuple[str, str, str, kmock.ResourceInfo]:
        group, _, version = api_version.rpartition("/")
        for res in self.resources:
            info = self.resources[res]
            if (res.group, res.version, info.kind) == (group, version, kind) and res.plural:
                return group, version, res.plural, info
        raise _error(404, "NotFound", f"no resource for {api_version} {kind}")

    def _kind(self, group: str, version: str, plural: str) -> tuple[str, str]:
        info = self._info(group, version, plural)
        return (f"{group}/{version}" if group else version), info.kind or plural.capitalize()

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        self._infos.clear()
        spec = crd["spec"]
        names = spec["names"]
        for ver in spec["versions"]:
            if not ver.get("served", True):
                continue
            schema = ver.get("schema", {}).get("openAPIV3Schema", {"type": "object"})
            subresources = {"status"} if "status" in ver.get("subresources", {}) else set()
            self.resources[kmock.resource(spec["group"], ver["name"], names["plural"])] = kmock.ResourceInfo(
                kind=names["kind"],
                singular=names.get("singular", names["kind"].lower()),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                verbs=set(VERBS),
                shortnames=set(names.get("shortNames", [])),
                categories=set(names.get("categories", [])),
                subresources=subresources,
            )
            self._crds[spec["group"], names["plural"]] = _CRDInfo(
                schema=schema,
                validator=jsonschema.Draft7Validator(_strip_k8s_keywords(schema)),
                columns=list(ver.get("additionalPrinterColumns", [])),
            )

    # ---------------------------------------------------------------- reads

    def _existing(self, key: Key) -> Obj:
        obj = self._objects.get(key)
        if obj is None:
            raise _error(404, "NotFound", f'{key[1]} "{key[3]}" not found', name=key[3], kind=key[1])
        return obj

    def _matching(self, request: _Request) -> list[Obj]:
        ns, group, plural = request.namespace, request.group, request.plural
        return [
            obj
            for (g, p, ons, _), obj in self._objects.items()
            if g == group and p == plural and (ns is None or ons == ns) and _selected(obj, request.params)
        ]

    def _serve_list(self, request: _Request) -> aiohttp.web.StreamResponse:
        api_version, kind = self._kind(request.group, request.version, request.plural)
        items = self._matching(request)
        if "as=Table" in request.headers.get("Accept", ""):
            return aiohttp.web.json_response(
                self._table(request.group, request.plural, items, request.params)
            )
        return aiohttp.web.json_response(
            {
                "apiVersion": api_version,
                "kind": f"{kind}List",
                "metadata": {"resourceVersion": str(self._last_rv), "continue": ""},
                "items": items,
            }
        )

    def _table(self, group: str, plural: str, items: list[Obj], params: Mapping[str, str]) -> Obj:
        """A meta.k8s.io Table, so `kubectl get` shows the CRD's printer columns."""
        crd = self._crds.get((group, plural))
        columns = [c for c in (crd.columns if crd else []) if c.get("name") != "Age"]
        defs = [{"name": "Name", "type": "string", "format": "name"}]
        defs += [{"name": c["name"], "type": c.get("type", "string")} for c in columns]
        defs.append({"name": "Age", "type": "date"})
        rows = []
        for obj in items:
            cells: list[Any] = [obj["metadata"]["name"]]
            cells += [_jsonpath(obj, c["jsonPath"]) for c in columns]
            cells.append(_age(obj["metadata"].get("creationTimestamp", "")))
            partial = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
            rows.append({"cells": cells, "object": partial if "includeObject" not in params else obj})
        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": str(self._last_rv)},
            "columnDefinitions": defs,
            "rows": rows,
        }

    async def _serve_watch(self, request: _Request, info: kmock.ResourceInfo) -> aiohttp.web.StreamResponse:
        group, plural = request.group, request.plural
        api_version, kind = self._kind(group, request.version, plural)
        since = request.params.get("resourceVersion", "")
        initial = request.params.get("sendInitialEvents") == "true"
        timeout = float(request.params.get("timeoutSeconds", 0)) or None
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        # Snapshot/replay and subscription happen with no await in between: no event is lost.
        history = self._history.setdefault((group, plural), deque(maxlen=HISTORY))
        if since and since != "0" and not initial:
            oldest = history[0][0] if history else self._last_rv + 1
            first: list[Event]
            if int(since) < oldest - 1 and len(history) == history.maxlen:
                gone: Obj = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": 410,
                    "reason": "Expired",
                }
                first = [_event("ERROR", {**gone, "message": f"too old resource version: {since}"})]
            else:
                first = [event for rv, event in history if rv > int(since)]
        else:
            first = [_event("ADDED", obj) for obj in self._matching(request)]
            if initial or request.params.get("allowWatchBookmarks") == "true":
                first.append(self._bookmark(api_version, kind, initial_end=initial))
        self._watchers.setdefault((group, plural), set()).add(queue)
        for initial_event in first:
            queue.put_nowait(initial_event)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request.raw)
        try:
            async with asyncio.timeout(timeout):
                while (item := await queue.get()) is not None:
                    event, line = item
                    if event["type"] in ("BOOKMARK", "ERROR") or self._watch_matches(
                        request, event["object"]
                    ):
                        await response.write(line)
                    if event["type"] == "ERROR":
                        break
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._watchers[group, plural].discard(queue)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response

    def _watch_matches(self, request: _Request, obj: Obj) -> bool:
        ns = request.namespace
        return (ns is None or obj["metadata"].get("namespace") == ns) and _selected(obj, request.params)

    def _bookmark(self, api_version: str, kind: str, initial_end: bool) -> Event:
        meta: Obj = {"resourceVersion": str(self._last_rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _event("BOOKMARK", {"apiVersion": api_version, "kind": kind, "metadata": meta})

    def _close_watches(self) -> None:
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(None)

    # ---------------------------------------------------------------- writes

    def _create(self, request: _Request, info: kmock.ResourceInfo, ns: str) -> Obj:
        group, version, plural = request.group, request.version, request.plural
        body = request.data
        if not isinstance(body, dict):
            raise _error(400, "BadRequest", "the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            if meta.get("namespace", ns) != ns:
                raise _error(400, "BadRequest", "the namespace of the object does not match the URL")
            meta["namespace"] = ns
            if (("", "namespaces", "", ns)) not in self._objects:
                raise _error(404, "NotFound", f'namespaces "{ns}" not found', name=ns, kind="namespaces")
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(
                    422, "Invalid", "metadata.name: Required value: name or generateName is required"
                )
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))  # noqa: S311
            meta["name"] = meta["generateName"] + suffix
        obj["apiVersion"], obj["kind"] = self._kind(group, version, plural)
        if "status" in info.subresources:
            obj.pop("status", None)
        key = (group, plural, ns, meta["name"])
        if key in self._objects:
            raise _error(409, "AlreadyExists", f'{plural} "{meta["name"]}" already exists', name=meta["name"])
        _normalize(group, plural, obj)
        self._validate(group, plural, obj, None, request.params)
        if (group, plural) == CRD_RESOURCE:
            self._register_crd(obj)
        return self._insert(key, obj)

    def _update(self, key: Key, info: kmock.ResourceInfo, request: _Request) -> Obj:
        old = self._existing(key)
        body = request.data
        if request.method == "PUT":
            if not isinstance(body, dict):
                raise _error(400, "BadRequest", "the request body must be a JSON object")
            new = copy.deepcopy(body)
        else:
            new = _patch(old, body, request.headers.get("Content-Type", ""))
        stale = (new.get("metadata") or {}).get("resourceVersion")
        if stale and stale != old["metadata"]["resourceVersion"]:
            raise _error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {key[1]} "{key[3]}": the object has been modified; '
                "please apply your changes to the latest version and try again",
            )
        # Identity and server-owned metadata stay; status and the rest are separated by endpoint.
        meta = new.setdefault("metadata", {})
        for field in ("name", "namespace", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if field in old["metadata"]:
                meta[field] = old["metadata"][field]
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if request.subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
        elif "status" in info.subresources:
            new["status"] = old.get("status")
            if new["status"] is None:
                del new["status"]
        _normalize(key[0], key[1], new)
        self._validate(key[0], key[1], new, old, request.params)
        return self._commit(key, old, new)

    def _delete(self, key: Key, policy: str | None = None) -> Obj:
        obj = self._existing(key)
        if obj["metadata"].get("finalizers"):
            if "deletionTimestamp" in obj["metadata"]:
                return obj
            new = copy.deepcopy(obj)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return self._commit(key, obj, new)
        self._remove(key, cascade=policy != "Orphan")
        return obj

    def _insert(self, key: Key, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        meta["resourceVersion"] = self._next_rv()
        self._objects[key] = obj
        self._emit(key, "ADDED", obj)
        return obj

    def _commit(self, key: Key, old: Obj, new: Obj) -> Obj:
        """Store a changed object: bump generation/resourceVersion, emit MODIFIED, finish deletions."""
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old:
            return old  # the apiserver neither bumps the resourceVersion nor notifies on no-op writes
        spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        if spec_old != spec_new:
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[key] = new
        self._emit(key, "MODIFIED", new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(key, cascade=True)
        return new

    def _remove(self, key: Key, cascade: bool) -> None:
        obj = self._objects.pop(key)  # stored objects are never mutated (events share them)
        obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": self._next_rv()}}
        self._emit(key, "DELETED", obj)
        if cascade:  # the garbage collector: dependents whose owner is gone
            uid = obj["metadata"]["uid"]
            for dep_key, dep in list(self._objects.items()):
                owners = dep["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == uid for ref in owners) and dep_key in self._objects:
                    self._delete(dep_key)

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _emit(self, key: Key, kind: str, obj: Obj) -> None:
        event = _event(kind, obj)
        rv = int(obj["metadata"]["resourceVersion"])
        self._history.setdefault(key[:2], deque(maxlen=HISTORY)).append((rv, event))
        for queue in self._watchers.get(key[:2], ()):
            queue.put_nowait(event)

    # ---------------------------------------------------------------- validation

    def _validate(
        self, group: str, plural: str, obj: Obj, old: Obj | None, params: Mapping[str, str]
    ) -> None:
        crd = self._crds.get((group, plural))
        if crd is None:
            return
        if old is not None and all(obj.get(k) == old.get(k) for k in {*obj, *old} - {"metadata"}):
            return  # a metadata-only write: the rest was validated (and is ratcheted) already
        unknown: list[str] = []
        _default_and_prune(crd.schema, obj, "", unknown, root=True)
        causes = [
            {
                "reason": "FieldValueInvalid",
                "field": ".".join(str(p) for p in err.absolute_path),
                "message": err.message,
            }
            for err in crd.validator.iter_errors(obj)
        ]
        if params.get("fieldValidation") == "Strict":
            causes += [
                {"reason": "FieldValueInvalid", "field": f, "message": "unknown field"} for f in unknown
            ]
        if not causes:
            causes = self._check_cel(crd.schema, obj, old, "")
        if old is not None:  # validation ratcheting (GA in 1.33): unchanged values stay accepted
            causes = [c for c in causes if _jsonpath(obj, c["field"]) != _jsonpath(old, c["field"])]
        if causes:
            kind = obj.get("kind", plural)
            name = obj.get("metadata", {}).get("name", "")
            detail = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
            raise _error(
                422,
                "Invalid",
                f'{kind}.{group} "{name}" is invalid: {detail}',
                name=name,
                group=group,
                kind=kind,
                causes=causes,
            )

    def _rule_holds(self, rule: str, value: Any, old: Any) -> bool:
        # celpy is slow (~1 ms per evaluation): remember results for scalar values.
        scalar = old is None and isinstance(value, str | int | float | bool)
        memo_key = (rule, type(value).__name__, value) if scalar else None
        if memo_key is not None and memo_key in self._cel_results:
            return self._cel_results[memo_key]
        program = self._cel_cache.get(rule)
        if program is None:
            program = self._cel_cache[rule] = self._cel.program(self._cel.compile(rule))
        activation = {"self": celpy.json_to_cel(value)}
        if old is not None:
            activation["oldSelf"] = celpy.json_to_cel(old)
        try:
            result = program.evaluate(activation)
        except Exception:  # the apiserver reports evaluation errors as invalid too
            result = False
        holds = result is True or (isinstance(result, celpy.celtypes.BoolType) and bool(result))
        if memo_key is not None and len(self._cel_results) < 10_000:
            self._cel_results[memo_key] = holds
        return holds

    def _check_cel(self, schema: Obj, value: Any, old: Any, path: str) -> list[Obj]:
        causes: list[Obj] = []
        if old is not None and value == old:
            return causes  # ratcheting: an unchanged value is not re-validated
        for rule in schema.get("x-kubernetes-validations", []):
            uses_old = "oldSelf" in rule["rule"]
            if uses_old and old is None:
                continue  # transition rules only apply to updates
            if not self._rule_holds(rule["rule"], value, old if uses_old else None):
                field = path + rule.get("fieldPath", "")
                causes.append(
                    {
                        "reason": "FieldValueInvalid",
                        "field": field.lstrip("."),
                        "message": rule.get("message") or f"failed rule: {rule['rule']}",
                    }
                )
        if isinstance(value, dict):
            for name, sub in schema.get("properties", {}).items():
                if name in value:
                    sub_old = old.get(name) if isinstance(old, dict) else None
                    causes += self._check_cel(sub, value[name], sub_old, f"{path}.{name}")
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for name, item in value.items():
                    sub_old = old.get(name) if isinstance(old, dict) else None
                    causes += self._check_cel(extra, item, sub_old, f"{path}[{name}]")
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                causes += self._check_cel(schema["items"], item, None, f"{path}[{index}]")
        return causes


# -------------------------------------------------------------------- helpers


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _event(kind: str, obj: Obj) -> Event:
    event = {"type": kind, "object": obj}
    return event, json.dumps(event).encode() + b"\n"


def _normalize(group: str, plural: str, obj: Obj) -> None:
    """Secrets store `stringData` base64-encoded into `data`, as the apiserver does."""
    if (group, plural) == ("", "secrets") and isinstance(obj.get("stringData"), dict):
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _strip_k8s_keywords(schema: Any) -> Any:
    """OpenAPI v3 → JSON schema: drop Kubernetes extensions and `nullable` (handled as plain types)."""
    if isinstance(schema, dict):
        return {k: _strip_k8s_keywords(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if isinstance(schema, list):
        return [_strip_k8s_keywords(v) for v in schema]
    return schema


def _default_and_prune(schema: Obj, value: Any, path: str, unknown: list[str], root: bool = False) -> None:
    """Apply `default`s and drop fields the structural schema does not know, like the apiserver."""
    if isinstance(value, dict) and schema.get("type", "object") == "object":
        props: Obj = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        keep = schema.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in schema
        for name in list(value):
            if root and name == "metadata":
                continue  # ObjectMeta is not pruned by the CRD schema
            if name in props:
                _default_and_prune(props[name], value[name], f"{path}.{name}", unknown)
            elif root and name in ("apiVersion", "kind", "metadata"):
                continue
            elif isinstance(schema.get("additionalProperties"), dict):
                _default_and_prune(schema["additionalProperties"], value[name], f"{path}.{name}", unknown)
            elif not keep:
                unknown.append(f"{path}.{name}".lstrip("."))
                del value[name]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _default_and_prune(schema["items"], item, f"{path}[{index}]", unknown)


def _selected(obj: Obj, params: Mapping[str, str]) -> bool:
    """labelSelector (=, ==, !=, exists, !exists) and fieldSelector (metadata.name/namespace)."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, (params.get("labelSelector") or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term.strip() not in labels:
            return False
    for term in filter(None, (params.get("fieldSelector") or "").split(",")):
        negate = "!=" in term
        k, v = term.replace("!=", "=").replace("==", "=").split("=", 1)
        actual = _jsonpath(obj, "." + k.strip())
        if (str(actual) == v.strip()) == negate:
            return False
    return True


def _jsonpath(obj: Any, path: str) -> Any:
    """The dotted-path subset of JSONPath used by printer columns and field selectors."""
    for part in path.strip("{}").lstrip(".").split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _age(timestamp: str) -> str:
    if not timestamp:
        return "<unknown>"
    then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(tz=datetime.UTC) - then).total_seconds())
    return (
        f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    )


def _patch(old: Obj, patch: Any, content_type: str) -> Obj:
    if "json-patch" in content_type:
        if not isinstance(patch, list):
            raise _error(400, "BadRequest", "a JSON patch must be a list of operations")
        return _json_patch(copy.deepcopy(old), patch)
    if not isinstance(patch, dict):
        raise _error(400, "BadRequest", "a merge patch must be a JSON object")
    if "apply-patch" in content_type:
        raise _error(415, "UnsupportedMediaType", "server-side apply is not emulated")
    return _merge(copy.deepcopy(old), patch, strategic="strategic-merge" in content_type)


def _merge(old: Any, patch: Any, strategic: bool) -> Any:
    """RFC 7386 merge patch; `strategic` also merges lists of named objects by name. Reuses `old`."""
    if not isinstance(patch, dict):
        if strategic and isinstance(patch, list) and isinstance(old, list) and _named(patch) and _named(old):
            merged = {item["name"]: item for item in old}
            for item in patch:
                merged[item["name"]] = _merge(merged.get(item["name"], {}), item, strategic)
            return list(merged.values())
        return patch
    result = old if isinstance(old, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value, strategic)
    return result


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    """RFC 6902: add, remove, replace, move, copy, test. A failed `test` is 422 as in the apiserver."""
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        if kind in ("move", "copy"):
            value = copy.deepcopy(_pointer_get(doc, op["from"]))
            if kind == "move":
                _pointer_remove(doc, op["from"])
            _pointer_add(doc, path, value)
        elif kind == "test":
            try:
                actual = _pointer_get(doc, path)
            except (KeyError, IndexError, TypeError):
                actual = object()
            if actual != op.get("value"):
                raise _error(
                    422,
                    "Invalid",
                    f"the server rejected our request due to an error in our request: test failed at {path}",
                )
        elif kind == "remove":
            _pointer_remove(doc, path)
        elif kind == "replace":
            _pointer_remove(doc, path)
            _pointer_add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "add":
            _pointer_add(doc, path, copy.deepcopy(op.get("value")))
        else:
            raise _error(400, "BadRequest", f"unknown JSON patch op: {kind}")
    return doc


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _pointer_get(doc: Any, path: str) -> Any:
    for part in _pointer(path):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _pointer_parent(doc: Any, path: str) -> tuple[Any, str]:
    parts = _pointer(path)
    if not parts:
        raise _error(422, "Invalid", "JSON patch on the document root is not supported")
    try:
        for part in parts[:-1]:
            doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    except (KeyError, IndexError, ValueError) as e:
        raise _error(422, "Invalid", f"JSON patch path not found: {path}") from e
    return doc, parts[-1]


def _pointer_add(doc: Any, path: str, value: Any) -> None:
    parent, last = _pointer_parent(doc, path)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value


def _pointer_remove(doc: Any, path: str) -> None:
    parent, last = _pointer_parent(doc, path)
    try:
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    except (KeyError, IndexError, ValueError) as e:
        raise _error(422, "Invalid", f"JSON patch path not found: {path}") from e
