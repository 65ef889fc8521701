"""template.yaml grants each function exactly the DynamoDB actions its code calls (README, "Least privilege").

What a function needs is derived from the source, not listed by hand: every DynamoDB SDK call in the adapter
(shared/src/adapters/dynamo.rs) is mapped to its IAM action and attributed to the port methods that reach it through
the adapter's private helpers; then each function's needs are the port methods its crate calls, in its own source and
in the shared modules it uses. A grant no code needs, or a call no grant allows, fails the test.

    .venv/test/bin/python -m unittest discover -s infra/scripts -v
"""

import pathlib
import re
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DYNAMO_ADAPTER = ROOT / "shared/src/adapters/dynamo.rs"
PORTS = ROOT / "shared/src/ports.rs"
FUNCTIONS = {
    "IntakeApiFunction": "functions/intake-api",
    "MediaValidatorFunction": "functions/media-validator",
    "PublisherFunction": "functions/publisher",
}

# Every DynamoDB client method the adapter may call, and the IAM actions that authorise it. A call missing here fails
# the test, so that a new kind of call cannot slip past the comparison.
SDK_TO_IAM = {
    "get_item": {"dynamodb:GetItem"},
    "batch_get_item": {"dynamodb:BatchGetItem"},
    "put_item": {"dynamodb:PutItem"},
    "update_item": {"dynamodb:UpdateItem"},
    "delete_item": {"dynamodb:DeleteItem"},
    "batch_write_item": {"dynamodb:BatchWriteItem"},
    "query": {"dynamodb:Query"},
    "scan": {"dynamodb:Scan"},
    # Transactions are authorised by the actions inside them (TRANSACTION_ITEMS).
    "transact_write_items": set(),
    "transact_get_items": set(),
    "create_table": {"dynamodb:CreateTable"},
    "describe_table": {"dynamodb:DescribeTable"},
    "wait_until_table_exists": {"dynamodb:DescribeTable"},
    "update_time_to_live": {"dynamodb:UpdateTimeToLive"},
    "describe_time_to_live": {"dynamodb:DescribeTimeToLive"},
}
# `TransactWriteItem::builder().put(..)` and friends.
TRANSACTION_ITEMS = {
    "put": "dynamodb:PutItem",
    "update": "dynamodb:UpdateItem",
    "delete": "dynamodb:DeleteItem",
    "condition_check": "dynamodb:ConditionCheckItem",
}

FN_LINE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+(\w+)", re.MULTILINE)
CLIENT_CALL = re.compile(r"\.\s*(\w+)\(\)")
TRANSACTION_ITEM = re.compile(r"TransactWriteItem::builder\(\)\s*\.\s*(\w+)\(")


def without_tests(source):
    """Unit tests call ports too; they are not what the deployed function runs."""
    return source.split("#[cfg(test)]", 1)[0]


def functions_of(source):
    """Each `fn` of a Rust file with its body (up to the next `fn`)."""
    starts = list(FN_LINE.finditer(source))
    bodies = {}
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(source)
        bodies[match.group(1)] = bodies.get(match.group(1), "") + source[match.end() : end]
    return bodies


def adapter_actions():
    """Port method (or public adapter function) name -> the IAM actions its calls need, through helpers."""
    bodies = functions_of(without_tests(DYNAMO_ADAPTER.read_text()))
    direct, helpers, unknown = {}, {}, set()
    for name, body in bodies.items():
        actions = set()
        for call in CLIENT_CALL.findall(body):
            if call in SDK_TO_IAM:
                actions |= SDK_TO_IAM[call]
        for item in TRANSACTION_ITEM.findall(body):
            if item not in TRANSACTION_ITEMS:
                unknown.add(f"TransactWriteItem::{item}")
            else:
                actions.add(TRANSACTION_ITEMS[item])
        direct[name] = actions
        helpers[name] = {other for other in bodies if other != name and re.search(rf"\b{other}\s*\(", body)}
    resolved = {}

    def resolve(name, seen=()):
        if name in resolved:
            return resolved[name]
        actions = set(direct[name])
        for helper in helpers[name]:
            if helper not in seen:
                actions |= resolve(helper, seen + (name,))
        resolved[name] = actions
        return actions

    return {name: resolve(name) for name in bodies}, unknown


def client_calls_outside_the_table():
    """Client-looking calls in the adapter that SDK_TO_IAM does not know (e.g. a new `.transact_get_items()`)."""
    source = without_tests(DYNAMO_ADAPTER.read_text())
    calls = set(re.findall(r"\.client\s*\.\s*(\w+)\(\)", source))
    calls |= set(re.findall(r"\bclient\s*\.\s*(\w+)\(\)", source))
    return calls - set(SDK_TO_IAM)


def rust_sources(directory):
    return [without_tests(path.read_text()) for path in sorted(directory.rglob("*.rs"))]


def linked_sources(crate):
    """The crate's own source and the shared modules it uses (transitively), adapters excepted: the adapters are
    what the port calls resolve to."""
    shared = ROOT / "shared/src"
    modules = {
        path.stem if path.is_file() else path.name: path
        for path in shared.iterdir()
        if path.name not in ("adapters", "lib.rs", "ports.rs", "mod.rs") and (path.suffix == ".rs" or path.is_dir())
    }
    sources = []
    for directory in ("src",):
        sources += rust_sources(ROOT / crate / directory)
    used, pending = set(), list(sources)
    while pending:
        text = pending.pop()
        for module, path in modules.items():
            if module not in used and re.search(rf"\b{module}::", text):
                used.add(module)
                found = rust_sources(path) if path.is_dir() else [without_tests(path.read_text())]
                sources += found
                pending += found
    return sources


def required_actions(crate, actions_by_method):
    entry_points = set(re.findall(r"\bfn\s+(\w+)", PORTS.read_text())) | {"create_table"}
    needed = set()
    for source in linked_sources(crate):
        for method in entry_points & set(actions_by_method):
            if re.search(rf"(?<!fn )\b{method}\s*\(", source):
                needed |= actions_by_method[method]
    return needed


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Sub, !GetAtt, ...) as their plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


CfnLoader.add_multi_constructor("!", _any_tag)


def granted_actions(resource, service):
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)
    granted = set()
    for policy in template["Resources"][resource]["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            granted |= {action for action in actions if action.startswith(f"{service}:")}
    return granted


class DynamoDbGrants(unittest.TestCase):
    def test_every_adapter_call_is_in_the_sdk_to_iam_table(self):
        _, unknown = adapter_actions()
        self.assertEqual(unknown, set())
        self.assertEqual(client_calls_outside_the_table(), set())

    def test_the_scan_sees_the_calls_it_must(self):
        actions, _ = adapter_actions()
        self.assertEqual(actions["take_oauth_state"], {"dynamodb:DeleteItem"})
        self.assertEqual(actions["get_media_many"], {"dynamodb:BatchGetItem"})
        self.assertIn("dynamodb:PutItem", actions["create_account"], "a transactional put")
        self.assertIn("dynamodb:GetItem", actions["get_post"], "through the get_record helper")

    def test_each_function_is_granted_exactly_the_dynamodb_actions_its_code_calls(self):
        actions, _ = adapter_actions()
        for resource, crate in FUNCTIONS.items():
            with self.subTest(function=resource):
                needed = required_actions(crate, actions)
                self.assertTrue(needed, f"{crate}: no DynamoDB call found; the scan is broken")
                granted = granted_actions(resource, "dynamodb")
                self.assertEqual(
                    granted,
                    needed,
                    f"{resource}: granted but unused {sorted(granted - needed)}, "
                    f"used but not granted {sorted(needed - granted)}",
                )


if __name__ == "__main__":
    unittest.main()
