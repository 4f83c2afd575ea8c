#!/usr/bin/env python3
"""Generate crates/devcluster/src/protobuf/table.rs from the prost sources of k8s-pb.

Usage (from the repository root):

    mkdir -p /tmp/pbx && (cd /tmp/pbx && tar xzf ~/.cargo/registry/cache/*/k8s-pb-0.9.0.crate)
    python3 crates/devcluster/tools/gen_protobuf_table.py \
        --k8s-pb /tmp/pbx/k8s-pb-0.9.0/src \
        --k8s-openapi ~/.cargo/registry/src/*/k8s-openapi-0.29.0/src \
        --out crates/devcluster/src/protobuf/table.rs

Field tags, wire types and message types come from k8s-pb (prost attributes). JSON names
are derived from prost's snake_case names (camelCase plus a small acronym table) and then
cross-checked against the serde code of k8s-openapi, which holds the exact JSON name of
every field: any disagreement, or any field that cannot be explained, fails the generator.
The same check finds Go's inlined structs (e.g. `Probe.handler`, `Volume.volumeSource`):
fields that k8s-openapi does not have but whose message's fields it has on the parent.

Go's protobuf encoder writes every non-pointer field, zero or not, while its JSON encoder
drops zero values of `omitempty` fields. The table therefore marks the scalar fields whose
zero value must be kept: those k8s-openapi marks required (no `omitempty` in Go) and the Go
pointer fields listed in POINTER_FIELDS below (an explicit zero there means something, e.g.
`replicas: 0` or `gracePeriodSeconds: 0`).

Stdlib only (rustfmt formats the output).
"""

import argparse
import glob
import os
import re
import subprocess
import sys

# Packages (k8s-pb module paths) whose messages all go into the table; whatever they
# reference is pulled in as well.
PACKAGES = [
    "api/core/v1",
    "api/apps/v1",
    "api/batch/v1",
    "api/networking/v1",
    "api/coordination/v1",
    "api/policy/v1",
    "api/autoscaling/v1",
    "api/autoscaling/v2",
    "api/rbac/v1",
    "api/scheduling/v1",
    "api/storage/v1",
    "api/discovery/v1",
    "api/events/v1",
    "api/authentication/v1",
    "api/authorization/v1",
    "api/certificates/v1",
    "api/node/v1",
    "apimachinery/pkg/apis/meta/v1",
]

META = "apimachinery.pkg.apis.meta.v1"

# Messages with their own JSON form (see protobuf/mod.rs for how each is decoded).
SPECIAL = {
    META + ".Time": "Time",
    META + ".MicroTime": "MicroTime",
    META + ".Duration": "Duration",
    META + ".FieldsV1": "RawJson",
    "apimachinery.pkg.runtime.RawExtension": "RawJson",
    "apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "apimachinery.pkg.api.resource.Quantity": "Quantity",
    # `repeated string items = 1` wrappers that are plain arrays in JSON.
    META + ".Verbs": "StringList",
    "api.authentication.v1.ExtraValue": "StringList",
    "api.authorization.v1.ExtraValue": "StringList",
    "api.certificates.v1.ExtraValue": "StringList",
}

# Messages in PACKAGES that are not API types (no JSON form) and are left out.
SKIP = {
    META + ".Timestamp",  # wire form of Time, never a field
    META + ".Patch",  # empty placeholder
}

# Kinds of meta/v1 that a client may send under any group version.
META_ANY_GROUP_KINDS = [
    "DeleteOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "GetOptions",
    "ListOptions",
    "Status",
    "WatchEvent",
]

# Go pointer scalars (`*int32`, `*bool`, `*string`, ...): keep an explicit zero value.
# "package.Message": [jsonName, ...]. Every entry must exist (checked).
POINTER_FIELDS = {
    META + ".ObjectMeta": ["deletionGracePeriodSeconds"],
    META + ".OwnerReference": ["controller", "blockOwnerDeletion"],
    META + ".ListMeta": ["remainingItemCount"],
    META + ".Preconditions": ["uid", "resourceVersion"],
    META + ".DeleteOptions": [
        "gracePeriodSeconds",
        "orphanDependents",
        "propagationPolicy",
        "ignoreStoreReadErrorWithClusterBreakingPotential",
    ],
    META + ".PatchOptions": ["force"],
    META + ".ListOptions": ["timeoutSeconds", "sendInitialEvents"],
    "api.apps.v1.DeploymentSpec": ["replicas", "revisionHistoryLimit", "progressDeadlineSeconds"],
    "api.apps.v1.DeploymentStatus": ["collisionCount", "terminatingReplicas"],
    "api.apps.v1.ReplicaSetSpec": ["replicas"],
    "api.apps.v1.ReplicaSetStatus": ["terminatingReplicas"],
    "api.apps.v1.StatefulSetSpec": ["replicas", "revisionHistoryLimit"],
    "api.apps.v1.StatefulSetStatus": ["collisionCount"],
    "api.apps.v1.RollingUpdateStatefulSetStrategy": ["partition"],
    "api.apps.v1.DaemonSetSpec": ["revisionHistoryLimit"],
    "api.apps.v1.DaemonSetStatus": ["collisionCount"],
    "api.batch.v1.JobSpec": [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
        "ttlSecondsAfterFinished",
        "manualSelector",
        "suspend",
        "completionMode",
        "podReplacementPolicy",
        "managedBy",
    ],
    "api.batch.v1.JobStatus": ["ready", "terminating", "failedIndexes"],
    "api.batch.v1.CronJobSpec": [
        "startingDeadlineSeconds",
        "suspend",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "timeZone",
    ],
    "api.batch.v1.PodFailurePolicyOnExitCodesRequirement": ["containerName"],
    "api.batch.v1.SuccessPolicyRule": ["succeededIndexes", "succeededCount"],
    "api.core.v1.PodSpec": [
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "automountServiceAccountToken",
        "shareProcessNamespace",
        "priority",
        "enableServiceLinks",
        "preemptionPolicy",
        "runtimeClassName",
        "setHostnameAsFQDN",
        "hostUsers",
    ],
    "api.core.v1.PodSecurityContext": [
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "fsGroup",
        "fsGroupChangePolicy",
        "supplementalGroupsPolicy",
        "seLinuxChangePolicy",
    ],
    "api.core.v1.SecurityContext": [
        "privileged",
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "readOnlyRootFilesystem",
        "allowPrivilegeEscalation",
        "procMount",
    ],
    "api.core.v1.Container": ["restartPolicy"],
    "api.core.v1.EphemeralContainerCommon": ["restartPolicy"],
    "api.core.v1.Probe": ["terminationGracePeriodSeconds"],
    "api.core.v1.ContainerStatus": ["started"],
    "api.core.v1.ServiceSpec": [
        "allocateLoadBalancerNodePorts",
        "loadBalancerClass",
        "internalTrafficPolicy",
        "ipFamilyPolicy",
        "trafficDistribution",
    ],
    "api.core.v1.ServicePort": ["appProtocol"],
    "api.core.v1.ClientIPConfig": ["timeoutSeconds"],
    "api.core.v1.LoadBalancerIngress": ["ipMode"],
    "api.core.v1.ConfigMap": ["immutable"],
    "api.core.v1.Secret": ["immutable"],
    "api.core.v1.ServiceAccount": ["automountServiceAccountToken"],
    "api.core.v1.ConfigMapKeySelector": ["optional"],
    "api.core.v1.SecretKeySelector": ["optional"],
    "api.core.v1.ConfigMapEnvSource": ["optional"],
    "api.core.v1.SecretEnvSource": ["optional"],
    "api.core.v1.ConfigMapVolumeSource": ["optional", "defaultMode"],
    "api.core.v1.SecretVolumeSource": ["optional", "defaultMode"],
    "api.core.v1.ConfigMapProjection": ["optional"],
    "api.core.v1.SecretProjection": ["optional"],
    "api.core.v1.KeyToPath": ["mode"],
    "api.core.v1.ProjectedVolumeSource": ["defaultMode"],
    "api.core.v1.DownwardAPIVolumeSource": ["defaultMode"],
    "api.core.v1.DownwardAPIVolumeFile": ["mode"],
    "api.core.v1.ServiceAccountTokenProjection": ["expirationSeconds"],
    "api.core.v1.PersistentVolumeClaimSpec": [
        "storageClassName",
        "volumeMode",
        "volumeAttributesClassName",
    ],
    "api.core.v1.VolumeMount": ["mountPropagation", "recursiveReadOnly"],
    "api.core.v1.CSIVolumeSource": ["readOnly", "fsType"],
    "api.core.v1.GRPCAction": ["service"],
    "api.core.v1.Toleration": ["tolerationSeconds"],
    "api.core.v1.TopologySpreadConstraint": ["minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"],
    "api.core.v1.PodDNSConfigOption": ["value"],
    "api.core.v1.WindowsSecurityContextOptions": [
        "gmsaCredentialSpecName",
        "gmsaCredentialSpec",
        "runAsUserName",
        "hostProcess",
    ],
    "api.core.v1.SeccompProfile": ["localhostProfile"],
    "api.core.v1.AppArmorProfile": ["localhostProfile"],
    "api.core.v1.HostPathVolumeSource": ["type"],
    "api.core.v1.PodResourceClaim": ["resourceClaimName", "resourceClaimTemplateName"],
    "api.policy.v1.PodDisruptionBudgetSpec": ["unhealthyPodEvictionPolicy"],
    "api.autoscaling.v1.HorizontalPodAutoscalerSpec": ["minReplicas", "targetCPUUtilizationPercentage"],
    "api.autoscaling.v1.HorizontalPodAutoscalerStatus": [
        "observedGeneration",
        "currentCPUUtilizationPercentage",
    ],
    "api.autoscaling.v2.HorizontalPodAutoscalerSpec": ["minReplicas"],
    "api.autoscaling.v2.HorizontalPodAutoscalerStatus": ["observedGeneration"],
    "api.autoscaling.v2.HPAScalingRules": ["stabilizationWindowSeconds", "selectPolicy"],
    "api.autoscaling.v2.MetricTarget": ["averageUtilization"],
    "api.autoscaling.v2.MetricValueStatus": ["averageUtilization"],
    "api.networking.v1.IngressSpec": ["ingressClassName"],
    "api.networking.v1.HTTPIngressPath": ["pathType"],
    "api.networking.v1.NetworkPolicyPort": ["protocol", "endPort"],
    "api.networking.v1.IngressClassParametersReference": ["scope", "namespace"],
    "api.networking.v1.IngressPortStatus": ["error"],
    "api.coordination.v1.LeaseSpec": [
        "holderIdentity",
        "leaseDurationSeconds",
        "leaseTransitions",
        "strategy",
        "preferredHolder",
    ],
    "api.scheduling.v1.PriorityClass": ["preemptionPolicy"],
    "api.authentication.v1.TokenRequestSpec": ["expirationSeconds"],
    "api.storage.v1.StorageClass": ["reclaimPolicy", "allowVolumeExpansion", "volumeBindingMode"],
    "api.storage.v1.CSIDriverSpec": [
        "attachRequired",
        "podInfoOnMount",
        "storageCapacity",
        "fsGroupPolicy",
        "requiresRepublish",
        "seLinuxMount",
    ],
    "api.discovery.v1.EndpointConditions": ["ready", "serving", "terminating"],
    "api.discovery.v1.Endpoint": ["hostname", "nodeName", "zone"],
    "api.discovery.v1.EndpointPort": ["name", "protocol", "port", "appProtocol"],
}

# Tokens of prost's snake_case names that are acronyms in Kubernetes' JSON names
# (never applied to the first token: `ip_family_policy` is `ipFamilyPolicy`).
ACRONYMS = {
    "ip": "IP",
    "ips": "IPs",
    "id": "ID",
    "uid": "UID",
    "uuid": "UUID",
    "url": "URL",
    "urls": "URLs",
    "uri": "URI",
    "cidr": "CIDR",
    "cidrs": "CIDRs",
    "tls": "TLS",
    "ipc": "IPC",
    "pid": "PID",
    "fqdn": "FQDN",
    "cpu": "CPU",
    "io": "IO",
    "wwns": "WWNs",
    "api": "API",
    "os": "OS",
    "dns": "DNS",
    "sha": "SHA",
    "pvc": "PVC",
    "ttl": "TTL",
    "iqn": "IQN",
}

# prost's snake_case of some mixed-case proto names, spelled out.
SNAKE_EXCEPTIONS = {
    "pod_cid_rs": "podCIDRs",
    "server_address_by_client_cid_rs": "serverAddressByClientCIDRs",
    "non_resource_ur_ls": "nonResourceURLs",
    "a_pi_group": "apiGroup",
    "target_ww_ns": "targetWWNs",
}

# Fields whose proto name is not their JSON name.
FIELD_EXCEPTIONS = {
    "api.core.v1.DaemonEndpoint.port": "Port",  # Go: json:"Port"
    "api.authentication.v1.BoundObjectReference.u_id": "uid",  # proto name uID
}

PROST_RE = re.compile(r"#\[prost\((.*)\)\]")
STRUCT_RE = re.compile(r"^pub struct (\w+) \{\s*(\})?\s*$")
FIELD_RE = re.compile(r"^\s*pub (?:r#)?(\w+):\s*(.*?),\s*$", re.S)


def die(msg):
    sys.stderr.write("gen_protobuf_table: error: " + msg + "\n")
    sys.exit(1)


class Field:
    def __init__(self, name, attr, rust_ty):
        self.snake = name
        self.attr = attr
        self.rust_ty = rust_ty
        m = re.search(r'tag = "(\d+)"', attr)
        if not m:
            die("no tag in " + attr)
        self.tag = int(m.group(1))
        self.json = None
        self.keep_zero = False
        self.inline = False
        self.card = "Single"  # Single | Repeated | Map
        self.kind = None  # scalar kind name, or ("msg", fqname)


def parse_pb_package(src, pkg):
    path = os.path.join(src, pkg, "mod.rs")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    structs = {}
    cur = None
    attr = None
    buf = None
    for line in lines:
        if cur is None:
            m = STRUCT_RE.match(line)
            if m:
                cur = []
                structs[m.group(1)] = cur
                if m.group(2):
                    cur = None
            continue
        if line.startswith("}"):
            cur = None
            continue
        if buf is not None:
            buf += " " + line.strip()
            if buf.endswith(",") and buf.count("<") == buf.count(">"):
                m = FIELD_RE.match(buf)
                if not m:
                    die("cannot parse field " + buf)
                cur.append(Field(m.group(1), attr, m.group(2)))
                buf = None
                attr = None
            continue
        m = PROST_RE.search(line)
        if m:
            attr = m.group(1)
            continue
        if attr is not None and line.strip().startswith("pub "):
            buf = line.strip()
            if buf.endswith(",") and buf.count("<") == buf.count(">"):
                m = FIELD_RE.match(buf)
                if not m:
                    die("cannot parse field " + buf)
                cur.append(Field(m.group(1), attr, m.group(2)))
                buf = None
                attr = None
    return structs


def resolve(pkg, path):
    """Resolve a Rust type path as written in module `pkg` to a dotted fq message name."""
    path = path.strip()
    for prefix in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        while path.startswith(prefix):
            path = path[len(prefix) : -1].strip().rstrip(",").strip()
    mods = pkg.split("/")
    parts = [p for p in path.split("::") if p]
    while parts and parts[0] == "super":
        mods = mods[:-1]
        parts = parts[1:]
    return ".".join(mods + parts)


def split_generic2(ty):
    # BTreeMap<K, V> -> V
    inner = ty[ty.index("<") + 1 : ty.rindex(">")]
    depth = 0
    for i, c in enumerate(inner):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            return inner[i + 1 :].strip().rstrip(",").strip()
    die("cannot split map type " + ty)


SCALARS = {"string": "String", "int32": "Int32", "int64": "Int64", "bool": "Bool", "double": "Double"}


def classify(pkg, f):
    a = f.attr
    if a.startswith("btree_map"):
        m = re.match(r'btree_map = "string, (\w+)"', a)
        if not m:
            die("unsupported map " + a)
        f.card = "Map"
        vt = m.group(1)
        if vt == "message":
            f.kind = ("msg", resolve(pkg, split_generic2(f.rust_ty)))
        elif vt == "bytes":
            f.kind = "Bytes"
        elif vt in SCALARS:
            f.kind = SCALARS[vt]
        else:
            die("unsupported map value " + a)
        return
    first = a.split(",")[0].strip()
    if "repeated" in a:
        f.card = "Repeated"
    if first == "message":
        f.kind = ("msg", resolve(pkg, f.rust_ty))
    elif first.startswith("bytes"):
        f.kind = "Bytes"
    elif first in SCALARS:
        f.kind = SCALARS[first]
    else:
        die("unsupported prost attribute " + a)


def camel(snake):
    if snake in SNAKE_EXCEPTIONS:
        return SNAKE_EXCEPTIONS[snake]
    toks = snake.split("_")
    out = toks[0]
    for t in toks[1:]:
        out += ACRONYMS.get(t, t[:1].upper() + t[1:])
    return out


def norm(s):
    return re.sub(r"[^a-z0-9]", "", s.lower())


# ---------------------------------------------------------------------------------------
# k8s-openapi: exact JSON names, required-ness, and (apiVersion, kind) of every resource.

OA_STRUCT_RE = re.compile(r"^pub struct (\w+) \{\s*$")
OA_FIELD_RE = re.compile(r"^    pub (?:r#)?(\w+): (.*),\s*$")
OA_KEY_RE = re.compile(r'^\s*"([^"]+)" => Field::Key_(\w+),\s*$')


def parse_openapi(root):
    """Returns {(module path, struct): {"fields": {json: required}, "api_version", "kind", "list_kind"}}."""
    result = {}
    versions = sorted(glob.glob(os.path.join(root, "v1_*")), reverse=True)
    if not versions:
        die("no k8s-openapi version modules under " + root)
    for vdir in versions:
        for path in glob.glob(os.path.join(vdir, "**", "*.rs"), recursive=True):
            rel = os.path.relpath(os.path.dirname(path), vdir).replace(os.sep, "/")
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            lines = text.split("\n")
            name = None
            fields = {}
            for i, line in enumerate(lines):
                m = OA_STRUCT_RE.match(line)
                if m:
                    name = m.group(1)
                    j = i + 1
                    while j < len(lines) and not lines[j].startswith("}"):
                        fm = OA_FIELD_RE.match(lines[j])
                        if fm:
                            fields[fm.group(1)] = not fm.group(2).startswith("Option<")
                        j += 1
                    break
            if name is None:
                continue
            json_names = {}
            for line in lines:
                km = OA_KEY_RE.match(line)
                if km and km.group(2) in fields:
                    json_names[km.group(1)] = fields[km.group(2)]
            entry = result.setdefault((rel, name), {"fields": {}})
            for j, req in json_names.items():
                # Required in any version: Go has no omitempty on it.
                entry["fields"][j] = entry["fields"].get(j, False) or req
            for key in ("API_VERSION", "KIND", "LIST_KIND"):
                km = re.search(r"const %s: &'static str = \"([^\"]+)\";" % key, text)
                if km and key.lower() not in entry:
                    entry[key.lower()] = km.group(1)
    return result


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s-pb", required=True, help="k8s-pb-0.9.0/src")
    ap.add_argument("--k8s-openapi", required=True, help="k8s-openapi-0.29.x/src")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    openapi = parse_openapi(args.k8s_openapi)

    # Parse every package that could be referenced.
    all_msgs = {}
    for modrs in glob.glob(os.path.join(args.k8s_pb, "**", "mod.rs"), recursive=True):
        pkg = os.path.relpath(os.path.dirname(modrs), args.k8s_pb).replace(os.sep, "/")
        if pkg == ".":
            continue
        for sname, fields in parse_pb_package(args.k8s_pb, pkg).items():
            fq = pkg.replace("/", ".") + "." + sname
            for f in fields:
                classify(pkg, f)
            all_msgs[fq] = (pkg, sname, fields)

    # Closure of messages reachable from PACKAGES.
    wanted = []
    seen = set()

    def want(fq):
        if fq in seen or fq in SPECIAL or fq in SKIP:
            return
        if fq not in all_msgs:
            die("unknown message " + fq)
        seen.add(fq)
        wanted.append(fq)
        for f in all_msgs[fq][2]:
            if isinstance(f.kind, tuple):
                want(f.kind[1])

    for pkg in PACKAGES:
        pfx = pkg.replace("/", ".") + "."
        for fq in sorted(k for k in all_msgs if k.startswith(pfx) and "." not in k[len(pfx) :]):
            want(fq)

    oa_norm = {(pkg, norm(name)): v for (pkg, name), v in openapi.items()}
    for (pkg, name), v in openapi.items():
        v["name"] = name

    def oa_struct(fq):
        pkg, sname, _ = all_msgs[fq]
        return oa_norm.get((pkg, norm(sname)))

    # JSON names, cross-checked against k8s-openapi.
    errors = []
    unchecked = []
    inlined_into = {}  # inlined message -> k8s-openapi struct of the message inlining it
    for fq in wanted:
        pkg, sname, fields = all_msgs[fq]
        oa = oa_struct(fq) or inlined_into.get(fq)
        oa_by_norm = {}
        if oa:
            for j in oa["fields"]:
                oa_by_norm.setdefault(norm(j), j)
        for f in fields:
            derived = FIELD_EXCEPTIONS.get(fq + "." + f.snake) or camel(f.snake)
            f.json = derived
            if oa is None:
                unchecked.append(fq + "." + derived)
                continue
            exact = oa_by_norm.get(norm(f.snake)) or oa_by_norm.get(norm(derived))
            if exact is not None:
                if exact != derived:
                    errors.append("%s.%s: derived %r, k8s-openapi says %r" % (fq, f.snake, derived, exact))
                f.keep_zero = oa["fields"][exact]
                continue
            # Not a JSON field of its own: is it a Go inlined struct?
            if isinstance(f.kind, tuple) and f.card == "Single" and f.kind[1] in all_msgs:
                sub = all_msgs[f.kind[1]][2]
                if sub and all(norm(s.snake) in oa_by_norm or norm(camel(s.snake)) in oa_by_norm for s in sub):
                    f.inline = True
                    inlined_into[f.kind[1]] = oa
                    continue
            errors.append("%s.%s: not found in k8s-openapi %s/%s" % (fq, f.snake, pkg, sname))

    # Pointer fields.
    by_norm_fq = {}
    for k in all_msgs:
        pk, _, sn = k.rpartition(".")
        by_norm_fq[pk + "." + norm(sn)] = k
    for fq, names in POINTER_FIELDS.items():
        pk, _, sn = fq.rpartition(".")
        fq = by_norm_fq.get(pk + "." + norm(sn), fq)
        if fq not in all_msgs:
            errors.append("POINTER_FIELDS: unknown message " + fq)
            continue
        byjson = {f.json: f for f in all_msgs[fq][2]}
        for n in names:
            if n not in byjson:
                errors.append("POINTER_FIELDS: %s has no field %s" % (fq, n))
            else:
                byjson[n].keep_zero = True

    if errors:
        die("JSON name check failed:\n  " + "\n  ".join(errors))

    # Kinds: (apiVersion, kind) -> message.
    kinds = []
    for fq in wanted:
        pkg, sname, _ = all_msgs[fq]
        oa = oa_struct(fq)
        if not oa or "api_version" not in oa:
            continue
        if norm(oa["kind"]) != norm(sname):
            die("kind %s for %s" % (oa["kind"], fq))
        kinds.append((oa["api_version"], oa["kind"], fq))
        lk = oa.get("list_kind")
        lfq = pkg.replace("/", ".") + "." + sname + "List"
        if lk and lfq in seen:
            kinds.append((oa["api_version"], lk, lfq))
    for k in META_ANY_GROUP_KINDS:
        if META + "." + k not in seen:
            die("meta kind %s missing" % k)

    index = {fq: i for i, fq in enumerate(wanted)}

    def ty(f):
        if isinstance(f.kind, tuple):
            fq = f.kind[1]
            if fq in SPECIAL:
                return "Ty::" + SPECIAL[fq]
            return "Ty::Msg(%d)" % index[fq]
        return "Ty::" + f.kind

    out = []
    out.append("// @generated by crates/devcluster/tools/gen_protobuf_table.py from the prost sources of")
    out.append("// k8s-pb 0.9.0, JSON names checked against k8s-openapi 0.29. Do not edit by hand.")
    out.append("// Regenerate (from the repository root):")
    out.append("//   mkdir -p /tmp/pbx && (cd /tmp/pbx && tar xzf ~/.cargo/registry/cache/*/k8s-pb-0.9.0.crate)")
    out.append("//   python3 crates/devcluster/tools/gen_protobuf_table.py --k8s-pb /tmp/pbx/k8s-pb-0.9.0/src \\")
    out.append("//     --k8s-openapi ~/.cargo/registry/src/*/k8s-openapi-0.29.0/src \\")
    out.append("//     --out crates/devcluster/src/protobuf/table.rs")
    out.append("")
    out.append("use super::schema::{INLINE, KEEP_ZERO, MAP, Message, REPEATED, Ty};")
    out.append("")
    out.append("/// Every message type, by index (`Ty::Msg(i)`).")
    out.append("pub(crate) static MESSAGES: [Message; %d] = [" % len(wanted))
    for fq in wanted:
        pkg, sname, fields = all_msgs[fq]
        out.append("    // %s" % fq)
        out.append("    Message {")
        oa = oa_struct(fq)
        out.append('        name: "%s",' % (oa["name"] if oa else sname))
        out.append("        fields: &[")
        for f in sorted(fields, key=lambda x: x.tag):
            flags = []
            if f.card == "Repeated":
                flags.append("REPEATED")
            if f.card == "Map":
                flags.append("MAP")
            if f.keep_zero:
                flags.append("KEEP_ZERO")
            if f.inline:
                flags.append("INLINE")
            fl = " | ".join(flags) if flags else "0"
            out.append('            (%d, "%s", %s, %s),' % (f.tag, f.json, ty(f), fl))
        out.append("        ],")
        out.append("    },")
    out.append("];")
    out.append("")
    out.append("/// (apiVersion, kind) -> index into MESSAGES.")
    out.append("pub(crate) static KINDS: [(&str, &str, u16); %d] = [" % len(kinds))
    for av, k, fq in sorted(kinds):
        out.append('    ("%s", "%s", %d),' % (av, k, index[fq]))
    out.append("];")
    out.append("")
    out.append("/// meta/v1 kinds accepted under any apiVersion -> index into MESSAGES.")
    out.append("pub(crate) static META_KINDS: [(&str, u16); %d] = [" % len(META_ANY_GROUP_KINDS))
    for k in META_ANY_GROUP_KINDS:
        out.append('    ("%s", %d),' % (k, index[META + "." + k]))
    out.append("];")
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    # Leave the file as `cargo fmt` would, so that formatting checks pass.
    try:
        subprocess.run(["rustfmt", "--edition", "2024", args.out], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        die("rustfmt failed on %s: %s" % (args.out, e))
    nfields = sum(len(all_msgs[fq][2]) for fq in wanted)
    sys.stderr.write(
        "gen_protobuf_table: %d messages, %d fields, %d kinds -> %s\n" % (len(wanted), nfields, len(kinds), args.out)
    )
    if unchecked:
        sys.stderr.write(
            "gen_protobuf_table: %d fields of messages without a k8s-openapi counterpart use derived names:\n  %s\n"
            % (len(unchecked), "\n  ".join(unchecked))
        )


if __name__ == "__main__":
    main()
