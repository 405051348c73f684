"""From the AWS calls a function makes to the IAM grants its role needs, and the check of a
policy against them.

``CALL_ACTIONS`` maps each AWS call (botocore service name, operation) to the IAM actions
that authorize it and the kind of resource each is evaluated on. It is written from the
AWS Service Authorization Reference ("Actions, resources, and condition keys for Amazon
DynamoDB / AWS Lambda / Amazon Bedrock AgentCore") and these pages:

- DynamoDB: each data operation is authorized by the action of the same name, on the table,
  or on the index for a Query or Scan with IndexName. TransactWriteItems and
  TransactGetItems have no action of their own: "Permissions for Put, Update, Delete, and
  Get actions are governed by the permissions used for the underlying PutItem, UpdateItem,
  DeleteItem, and GetItem operations. For the ConditionCheck action, you can use the
  dynamodb:ConditionCheckItem permission" (Amazon DynamoDB Developer Guide, "Using IAM with
  DynamoDB transactions"), so a transaction needs the item actions inside it, each on the
  table of its item.
- Lambda: Invoke is authorized by lambda:InvokeFunction on the function.
- Bedrock AgentCore: GetAgentRuntime (control plane) by bedrock-agentcore:GetAgentRuntime
  on the runtime; the runtime's WebSocket (``wss://bedrock-agentcore.REGION.amazonaws.com/
  runtimes/ARN/ws``) by bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream, not
  InvokeAgentRuntime, evaluated on the runtime and on the endpoint it reaches
  (``ARN/runtime-endpoint/QUALIFIER``, DEFAULT when no qualifier is given);
  StopRuntimeSession likewise on the runtime and its endpoint (its qualifier defaults to
  DEFAULT, AgentCore API Reference, "StopRuntimeSession").

A call missing from the table fails the check with a message that says to add it, to the
table and to the policy: a new AWS call cannot ship without a decision about its grant.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (service, operation) → ((IAM action, resource kind), …). Resource kinds: "table", "index"
# (the table's index named by IndexName, else the table), "function", "runtime",
# "runtime-endpoint". TransactWriteItems/TransactGetItems: see TRANSACTION_ITEM_ACTIONS.
CALL_ACTIONS: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("dynamodb", "GetItem"): (("dynamodb:GetItem", "table"),),
    ("dynamodb", "PutItem"): (("dynamodb:PutItem", "table"),),
    ("dynamodb", "UpdateItem"): (("dynamodb:UpdateItem", "table"),),
    ("dynamodb", "DeleteItem"): (("dynamodb:DeleteItem", "table"),),
    ("dynamodb", "Query"): (("dynamodb:Query", "index"),),
    ("dynamodb", "Scan"): (("dynamodb:Scan", "index"),),
    ("dynamodb", "DescribeTable"): (("dynamodb:DescribeTable", "table"),),
    ("dynamodb", "BatchGetItem"): (("dynamodb:BatchGetItem", "table"),),
    ("dynamodb", "BatchWriteItem"): (("dynamodb:BatchWriteItem", "table"),),
    ("dynamodb", "TransactWriteItems"): (),  # the item actions inside it
    ("dynamodb", "TransactGetItems"): (),  # the item actions inside it
    ("lambda", "Invoke"): (("lambda:InvokeFunction", "function"),),
    ("bedrock-agentcore-control", "GetAgentRuntime"): (
        ("bedrock-agentcore:GetAgentRuntime", "runtime"),
    ),
    ("bedrock-agentcore", "StopRuntimeSession"): (
        ("bedrock-agentcore:StopRuntimeSession", "runtime"),
        ("bedrock-agentcore:StopRuntimeSession", "runtime-endpoint"),
    ),
    ("bedrock-agentcore", "InvokeAgentRuntimeWithWebSocketStream"): (
        ("bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream", "runtime"),
        ("bedrock-agentcore:InvokeAgentRuntimeWithWebSocketStream", "runtime-endpoint"),
    ),
}

# A transaction's items (Put, Update, Delete, ConditionCheck, Get) → the item action.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    resources: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Call:
        resources = tuple(
            sorted(
                (key, json.dumps(value, sort_keys=True) if isinstance(value, list) else value)
                for key, value in record.get("resources", {}).items()
            )
        )
        return cls(record["service"], record["operation"], resources)

    def resource(self, name: str) -> Any:
        for key, value in self.resources:
            if key == name:
                return json.loads(value) if key == "TransactItems" else value
        return None

    def __str__(self) -> str:
        return f"{self.service}:{self.operation}"


def calls_read(path: Path) -> set[Call]:
    """The distinct calls recorded in a SKYMARSHAL_AWS_CALLS_FILE."""
    if not path.is_file():
        return set()
    return {
        Call.from_record(json.loads(line)) for line in path.read_text().splitlines() if line.strip()
    }


@dataclass(frozen=True)
class Stage:
    """The concrete resources of one stage, from zappa_settings.json."""

    region: str
    account: str
    table: str
    runtime_arn: str
    worker_function: str

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Stage:
        env = settings["environment_variables"]
        runtime_arn = str(env["AGENTCORE_RUNTIME_ARN"])
        return cls(
            region=str(settings["aws_region"]),
            account=runtime_arn.split(":")[4],
            table=str(env["SESSION_TABLE_NAME"]),
            runtime_arn=runtime_arn,
            worker_function=str(env["RUN_WORKER_FUNCTION"]),
        )

    def table_arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.table}"

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"


class UnknownCall(AssertionError):
    pass


def call_needs(call: Call, stage: Stage) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs that ``call`` needs in ``stage``. The recorded
    call names the dev package's resources; the stage's own come from its settings (a
    call on something the settings do not name is caught by ``call_resources_check``)."""
    key = (call.service, call.operation)
    if key not in CALL_ACTIONS:
        raise UnknownCall(
            f"The handler makes the AWS call {call} ({dict(call.resources)}), which has no "
            "entry in CALL_ACTIONS (tests/deployment/iam_calls.py): add it with the IAM "
            "action(s) the Service Authorization Reference gives for it, and grant them in "
            "infrastructure/lambda-policy-*.json, then say why in README's IAM section."
        )
    if call.operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = [item["kind"] for item in call.resource("TransactItems") or []]
        unknown = [kind for kind in kinds if kind not in TRANSACTION_ITEM_ACTIONS]
        if unknown:
            raise UnknownCall(f"{call} holds items of kinds {unknown}: add them to the table")
        return [(TRANSACTION_ITEM_ACTIONS[kind], stage.table_arn()) for kind in kinds]
    endpoint = call.resource("qualifier") or "DEFAULT"
    arns = {
        "table": stage.table_arn(),
        "index": (
            f"{stage.table_arn()}/index/{call.resource('IndexName')}"
            if call.resource("IndexName")
            else stage.table_arn()
        ),
        "function": stage.function_arn(stage.worker_function),
        "runtime": stage.runtime_arn,
        "runtime-endpoint": f"{stage.runtime_arn}/runtime-endpoint/{endpoint}",
    }
    return [(action, arns[kind]) for action, kind in CALL_ACTIONS[key]]


def call_resources_check(calls: set[Call], stage: Stage) -> list[str]:
    """Problems: calls (recorded from ``stage``'s package) on resources other than the ones
    its settings name, which ``call_needs`` would otherwise resolve wrongly."""
    problems = []
    expected = {
        "TableName": stage.table,
        "FunctionName": stage.worker_function,
        "agentRuntimeArn": stage.runtime_arn,
        "agentRuntimeId": stage.runtime_arn.rsplit("/", 1)[-1],
    }
    for call in calls:
        for name, value in expected.items():
            found = call.resource(name)
            if found is not None and found != value:
                problems.append(f"{call} acts on {name}={found!r}, not the stage's {value!r}")
        for item in call.resource("TransactItems") or []:
            if item["TableName"] != stage.table:
                problems.append(f"{call} writes to table {item['TableName']!r}")
    return problems


def policy_grants(policy: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (action, resource pattern) an Allow-only policy grants."""
    pairs = []
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow", statement
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
        actions, resources = statement["Action"], statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                pairs.append((action, resource))
    return pairs


def allowed(grants: list[tuple[str, str]], action: str, resource: str) -> bool:
    """IAM's matching for a policy without NotAction/NotResource or conditions: the action
    case-insensitively, the resource with * and ? as wildcards (fnmatch's [] never appear
    in these policies)."""
    return any(
        granted.lower() == action.lower() and fnmatch.fnmatchcase(resource, pattern)
        for granted, pattern in grants
    )


def policy_check(
    policy: dict[str, Any],
    calls: set[Call],
    stage: Stage,
    role_grants: list[tuple[str, str, str]],
) -> list[str]:
    """Problems with ``policy`` for a function that makes ``calls``: a call whose action is
    not granted on its resource, and a grant that neither a call nor ``role_grants``
    ((action, resource, why) that AWS itself uses the role for) needs. Empty when the
    policy grants exactly what the calls need. Raises UnknownCall for a call that is not
    in CALL_ACTIONS."""
    grants = policy_grants(policy)
    problems = []
    needed: list[tuple[str, str, str]] = []
    for call in sorted(calls, key=str):
        for action, resource in call_needs(call, stage):
            needed.append((action, resource, str(call)))
            if not allowed(grants, action, resource):
                problems.append(f"{call} needs {action} on {resource}: not granted")
    for action, resource, why in role_grants:
        needed.append((action, resource, why))
        if not allowed(grants, action, resource):
            problems.append(f"{action} on {resource} ({why}): not granted")
    for action, pattern in grants:
        if not any(
            action.lower() == wanted.lower() and fnmatch.fnmatchcase(resource, pattern)
            for wanted, resource, _ in needed
        ):
            problems.append(f"{action} on {pattern} is granted but no call needs it")
    return problems
