#!/usr/bin/env python3
"""Least privilege, checked: each function's role in template.yaml against the AWS
calls its code made in the integration tests.

The tests give every function's handler its own AWS clients, which record each call
as the IAM action and resource it needs (tests/it/calls.rs), into
$HOOKLINE_CALL_LOG_DIR/*.tsv. This check then fails when

  - a function called something its role does not allow (it would fail in AWS), or
  - a role allows something its function never called (more than it needs),

apart from what Lambda itself does with the role: write the function's log group,
and poll the queue of an SQS trigger. Those grants must be there, on exactly those
resources. Roles are written out in the template (no SAM policy templates, no
managed policies, no wildcards), so what is read here is what AWS will enforce.

    infra/iam_check.py [template.yaml] [call log dir]
"""

import fnmatch
import glob
import os
import sys
from collections import defaultdict

from cfnlint.decode import decode

ESM_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def logical(value, problems, where):
    """A policy resource as the tests name it: `DeliveryQueue`, `Table/index/open`."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            return value["Fn::GetAtt"][0]
        if "Ref" in value:
            return value["Ref"]
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and sub.startswith("${") and ".Arn}" in sub:
            name, rest = sub[2:].split(".Arn}", 1)
            return name + rest
    problems.append(f"{where}: resource {value!r} is not a resource of this stack")
    return None


def as_list(v):
    return v if isinstance(v, list) else [v]


def grants_of(resources, role_id, problems):
    """(action, resource) pairs a role allows."""
    role = resources.get(role_id, {})
    props = role.get("Properties", {})
    if role.get("Type") != "AWS::IAM::Role":
        problems.append(f"{role_id} is not an AWS::IAM::Role in the template")
    if props.get("ManagedPolicyArns"):
        problems.append(f"{role_id}: managed policies allow more than the code needs; write the statements out")
    grants = set()
    for policy in props.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            where = f"{role_id}/{policy['PolicyName']}"
            if st.get("Effect") != "Allow" or "NotAction" in st or "NotResource" in st:
                problems.append(f"{where}: only plain Allow statements are expected")
                continue
            for action in as_list(st["Action"]):
                if "*" in action:
                    problems.append(f"{where}: wildcard action {action}")
                for res in as_list(st["Resource"]):
                    name = logical(res, problems, where)
                    if name is not None:
                        grants.add((action, name))
    return grants


def platform_grants(fn_id, props, problems):
    """What Lambda does with the function's role, not the function's code."""
    needed = set()
    group = props.get("LoggingConfig", {}).get("LogGroup")
    if not (isinstance(group, dict) and "Ref" in group):
        problems.append(f"{fn_id}: LoggingConfig.LogGroup must name a log group of this stack")
    else:
        needed |= {(a, group["Ref"]) for a in LOG_ACTIONS}
    for event in props.get("Events", {}).values():
        if event.get("Type") == "SQS":
            queue = logical(event["Properties"]["Queue"], problems, f"{fn_id} SQS trigger")
            needed |= {(a, queue) for a in ESM_ACTIONS}
    return needed


def recorded_calls(log_dir):
    calls = defaultdict(set)
    for path in glob.glob(os.path.join(log_dir, "*.tsv")):
        with open(path) as f:
            for line in f:
                function, action, resource = line.rstrip("\n").split("\t")
                calls[function].add((action, resource))
    return calls


def allowed(call, grants):
    action, resource = call
    return any(a == action and fnmatch.fnmatchcase(resource, r) for a, r in grants)


def check(template_path, log_dir):
    template, matches = decode(template_path)
    if matches:
        return [f"{template_path} does not parse: {m}" for m in matches], {}
    resources = template["Resources"]
    calls = recorded_calls(log_dir)
    problems = []
    if not calls:
        return [f"no AWS calls recorded in {log_dir}: run the integration tests first (make unit)"], {}
    summary = {}
    functions = {
        fid: r for fid, r in resources.items() if r["Type"] == "AWS::Serverless::Function"
    }
    for fn_id, res in sorted(functions.items()):
        props = res["Properties"]
        name = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary", fn_id)
        if "Policies" in props:
            problems.append(f"{fn_id}: use Role, not Policies (SAM would add grants of its own)")
        role = props.get("Role", {}).get("Fn::GetAtt", [None])[0]
        if role is None:
            problems.append(f"{fn_id}: no Role of this stack (Role: !GetAtt <Role>.Arn)")
            continue
        grants = grants_of(resources, role, problems)
        platform = platform_grants(fn_id, props, problems)
        made = calls.get(name, set())
        if not made:
            problems.append(f"{name}: no calls recorded; its tests did not run with a call log")
        for a, r in sorted(platform - grants):
            problems.append(f"{role} lacks {a} on {r}, which Lambda needs for {name}")
        for a, r in sorted(made):
            if not allowed((a, r), grants):
                problems.append(f"{name} calls {a} on {r}, which {role} does not allow")
        for a, r in sorted(grants - platform):
            if not any(allowed(c, {(a, r)}) for c in made):
                problems.append(f"{role} allows {a} on {r}, which {name} never calls")
        summary[name] = (len(made), len(grants))
    return problems, summary


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    template = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "template.yaml")
    log_dir = sys.argv[2] if len(sys.argv) > 2 else os.environ.get(
        "HOOKLINE_CALL_LOG_DIR", os.path.join(root, "target", "aws-calls"))
    problems, summary = check(template, log_dir)
    for p in problems:
        print(f"iam: {p}", file=sys.stderr)
    if problems:
        print(f"iam: {len(problems)} problem(s); the roles are in {template}", file=sys.stderr)
        return 1
    for name, (made, granted) in sorted(summary.items()):
        print(f"iam: {name}: {made} distinct calls recorded, {granted} grants, each used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
