"""template.yaml grants each function exactly the DynamoDB, SQS, S3 and EventBridge actions its code calls (README,
"Least privilege").

What a function needs is derived from the source, not listed by hand: every DynamoDB SDK call in the adapter
(shared/src/adapters/dynamo.rs) is mapped to its IAM action and attributed to the port methods that reach it through
the adapter's private helpers; then each function's needs are the port methods its crate calls, in its own source and
in the shared modules it uses. A grant no code needs, or a call no grant allows, fails the test.

SQS is the timer port (`Timer::schedule`): its only adapter is shared/src/adapters/sqs.rs, whose SDK calls are mapped
the same way; a function needs them when its crate (or a shared module it uses) calls `.schedule(` on a timer. The
grant must be on TimerQueue alone, with the KMS calls SQS makes for a sender of an encrypted queue. Which functions
arm timers is also stated by hand (TIMER_USERS), so that a scan that stopped finding calls cannot pass by finding none.
The adapter's receiving side (TimerInbox: receive, acknowledge) is for processes that poll (the local runner, the
contract suite); in AWS the event source mapping polls with what SAM attaches for the SQS event, so it needs no grant
here and is not scanned. The media job queue (`MediaJobQueue::enqueue`, the same adapter file) is checked the same
way on MediaJobsQueue: a function may send to it exactly when its crate calls `.enqueue(` on its jobs, and
JOB_USERS states which by hand. The validator and the media worker are two binaries of one crate, so the scan gives
them the same needs; what each may touch in the bucket (uploads/, renditions/) is stated in the template.

S3 is the blob ports (`BlobStore`, `PartWriter`), adapter shared/src/adapters/s3.rs, mapped the same way (a PUT that
sets tags also needs PutObjectTagging); a function needs them for the port methods it calls on its blob store
(`blobs.`, `store.`, `writer.`), and ListBucket exactly when it reads, so that a missing object answers 404. Actions
are compared; which prefix each may touch (uploads/, renditions/, public/) is stated in the template and the README.

    .venv/test/bin/python -m unittest discover -s infra/scripts -v
"""

import pathlib
import re
import unittest

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DYNAMO_ADAPTER = ROOT / "shared/src/adapters/dynamo.rs"
SQS_ADAPTER = ROOT / "shared/src/adapters/sqs.rs"
S3_ADAPTER = ROOT / "shared/src/adapters/s3.rs"
PORTS = ROOT / "shared/src/ports.rs"
FUNCTIONS = {
    "IntakeApiFunction": "functions/intake-api",
    "MediaValidatorFunction": "functions/media-validator",
    "MediaWorkerFunction": "functions/media-validator",
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

# Every SQS client method the timer adapter may call, and the IAM action that authorises it (a batch call is
# authorised by its single-message action). A call missing here fails the test.
SQS_SDK_TO_IAM = {
    "send_message": {"sqs:SendMessage"},
    "send_message_batch": {"sqs:SendMessage"},
    "receive_message": {"sqs:ReceiveMessage"},
    "delete_message": {"sqs:DeleteMessage"},
    "delete_message_batch": {"sqs:DeleteMessage"},
    "change_message_visibility": {"sqs:ChangeMessageVisibility"},
    "change_message_visibility_batch": {"sqs:ChangeMessageVisibility"},
    "get_queue_attributes": {"sqs:GetQueueAttributes"},
    "get_queue_url": {"sqs:GetQueueUrl"},
    "create_queue": {"sqs:CreateQueue"},
    "purge_queue": {"sqs:PurgeQueue"},
}
# Every S3 client method the blob adapter may call, and the IAM actions that authorise it (HeadObject is authorised by
# GetObject, the parts of a multipart upload by PutObject). A call missing here fails the test.
S3_SDK_TO_IAM = {
    "get_object": {"s3:GetObject"},
    "head_object": {"s3:GetObject"},
    "put_object": {"s3:PutObject"},
    "create_multipart_upload": {"s3:PutObject"},
    "upload_part": {"s3:PutObject"},
    "complete_multipart_upload": {"s3:PutObject"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    "put_object_tagging": {"s3:PutObjectTagging"},
    "get_object_tagging": {"s3:GetObjectTagging"},
    "delete_object": {"s3:DeleteObject"},
    "delete_objects": {"s3:DeleteObject"},
    "copy_object": {"s3:GetObject", "s3:PutObject"},
    "list_objects_v2": {"s3:ListBucket"},
}
# A PUT that sets tags (the presigned upload's `x-amz-tagging`) is also authorised by PutObjectTagging.
S3_TAGGING = re.compile(r"\.\s*tagging\s*\(")
# Calls of the blob ports (`BlobStore`, `PartWriter`) through the names the code gives them: `deps.blobs.head(`,
# `state.blobs\n    .presign_upload(`, `self.store.read_range(`, `writer.write_part(`.
BLOB_CALL = re.compile(r"\b(?:blobs|store|writer)(?:\s*\.\s*(?:clone|as_ref)\s*\(\s*\))*\s*\.\s*(\w+)\s*\(")

# The timer port's one method, and the functions that arm timers: the intake (posts due now), the validator (posts
# waiting for a verdict) and the publisher (the tick and its re-arms).
TIMER_METHOD = "schedule"
TIMER_USERS = {"IntakeApiFunction", "MediaValidatorFunction", "MediaWorkerFunction", "PublisherFunction"}
# The media job queue's one method, and the functions that queue jobs: the intake (URL imports), the validator and
# the worker (remuxes over the validator's limit; the worker's imports can produce one).
JOB_METHOD = "enqueue"
JOB_USERS = {"IntakeApiFunction", "MediaValidatorFunction", "MediaWorkerFunction"}
# `deps.jobs.enqueue(`, `jobs.0.enqueue(`, `MediaJobQueue::enqueue(`.
JOB_CALL = re.compile(
    r"(?:\bjobs(?:\s*\.\s*(?:0|clone\s*\(\s*\)|as_ref\s*\(\s*\)))*\s*\.\s*enqueue|\bMediaJobQueue\s*::\s*enqueue)\s*\("
)
# Which queue each port's grant must name.
QUEUE_OF = {TIMER_METHOD: "TimerQueue.Arn", JOB_METHOD: "MediaJobsQueue.Arn"}
# `self.timer.schedule(`, `state.timer\n    .schedule(`, `timer.clone().schedule(`, `Timer::schedule(`; not
# `announce_schedule(` or `settle_schedule(`.
TIMER_CALL = re.compile(
    r"(?:timer(?:\s*\.\s*(?:clone|as_ref)\s*\(\s*\))*\s*\.\s*schedule|\bTimer\s*::\s*schedule)\s*\(", re.IGNORECASE
)
# `events.publish(`, `self.events.publish(`, `deps.events\n    .publish(`: the event sink port's one method.
EVENT_PUBLISH = re.compile(r"events(?:\s*\.\s*(?:clone|as_ref)\s*\(\s*\))*\s*\.\s*publish\s*\(")
# The EventBridge adapter's one call, and the action that authorises it.
EVENTBRIDGE_ADAPTER = ROOT / "shared/src/adapters/eventbridge.rs"
EVENTBRIDGE_SDK_TO_IAM = {"put_events": {"events:PutEvents"}}

# What SQS needs from a sender of a queue encrypted with a customer-managed key (AWS's SSE guidance for producers).
SQS_SENDER_KMS = {"kms:GenerateDataKey", "kms:Decrypt"}

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


def adapter_actions(adapter=DYNAMO_ADAPTER, sdk_to_iam=SDK_TO_IAM):
    """Port method (or public adapter function) name -> the IAM actions its calls need, through helpers."""
    bodies = functions_of(without_tests(adapter.read_text()))
    direct, helpers, unknown = {}, {}, set()
    for name, body in bodies.items():
        actions = set()
        for call in CLIENT_CALL.findall(body):
            if call in sdk_to_iam:
                actions |= sdk_to_iam[call]
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


def client_calls_outside_the_table(adapter=DYNAMO_ADAPTER, sdk_to_iam=SDK_TO_IAM):
    """Client-looking calls in the adapter that the table does not know (e.g. a new `.transact_get_items()`)."""
    source = without_tests(adapter.read_text())
    calls = set(re.findall(r"\.client\s*\.\s*(\w+)\(\)", source))
    calls |= set(re.findall(r"\bclient\s*\.\s*(\w+)\(\)", source))
    return calls - set(sdk_to_iam)


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


def template():
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=CfnLoader)


def as_list(value):
    return [value] if isinstance(value, str) else list(value or [])


def allow_statements(resource):
    """The function's own Allow statements (a Deny only narrows what SAM's managed policies allow)."""
    for policy in template()["Resources"][resource]["Properties"].get("Policies", []):
        if not isinstance(policy, dict):
            continue
        for statement in policy.get("Statement", []):
            if statement.get("Effect") == "Allow":
                yield statement


def granted_actions(resource, service):
    granted = set()
    for statement in allow_statements(resource):
        granted |= {action for action in as_list(statement.get("Action")) if action.startswith(f"{service}:")}
    return granted


def sqs_grants(resource):
    """Queue -> the SQS actions the function's Allow statements grant on it."""
    grants = {}
    for statement in allow_statements(resource):
        named = {action for action in as_list(statement.get("Action")) if action.startswith("sqs:")}
        for queue in as_list(statement.get("Resource")) if named else []:
            grants[queue] = grants.get(queue, set()) | named
    return grants


def kms_through_sqs(resource):
    """KMS actions the function may call through SQS only (kms:ViaService sqs.<region>.amazonaws.com)."""
    actions = set()
    for statement in allow_statements(resource):
        via = statement.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
        if any(service.startswith("sqs.") for service in as_list(via)):
            actions |= {action for action in as_list(statement.get("Action")) if action.startswith("kms:")}
    return actions


def queue_consumers(queue="TimerQueue.Arn"):
    """Functions with an SQS event on the queue, with that event's properties."""
    consumers = {}
    for name, resource in template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "SQS" and event["Properties"].get("Queue") == queue:
                consumers[name] = event["Properties"]
    return consumers


def timer_consumers():
    return queue_consumers("TimerQueue.Arn")


def queues_jobs(crate):
    """Whether the crate (or a shared module it uses) queues media jobs; comments do not count."""
    return any(JOB_CALL.search(re.sub(r"//[^\n]*", "", source)) for source in linked_sources(crate))


def queues_needed(crate):
    """The queues the crate sends to, by the port methods it calls."""
    needed = set()
    if arms_timers(crate):
        needed.add(QUEUE_OF[TIMER_METHOD])
    if queues_jobs(crate):
        needed.add(QUEUE_OF[JOB_METHOD])
    return needed


def arms_timers(crate):
    """Whether the crate (or a shared module it uses) calls the timer port; comments do not count."""
    return any(TIMER_CALL.search(re.sub(r"//[^\n]*", "", source)) for source in linked_sources(crate))


def publishes_events(crate):
    """Whether the crate (or a shared module it uses) publishes through the event sink; comments do not count."""
    return any(EVENT_PUBLISH.search(re.sub(r"//[^\n]*", "", source)) for source in linked_sources(crate))


def event_grants(resource):
    """(actions, resources) of the function's Allow statements that name EventBridge actions."""
    actions, resources = set(), set()
    for statement in allow_statements(resource):
        named = {action for action in as_list(statement.get("Action")) if action.startswith("events:")}
        if named:
            actions |= named
            resources |= set(as_list(statement.get("Resource")))
    return actions, resources


def s3_adapter_actions():
    """Blob port method -> the S3 actions its calls need (through the adapter's helpers)."""
    actions, _ = adapter_actions(S3_ADAPTER, S3_SDK_TO_IAM)
    bodies = functions_of(without_tests(S3_ADAPTER.read_text()))
    tagging = {name for name, body in bodies.items() if S3_TAGGING.search(body)}
    for name in actions:
        helpers = {other for other in tagging if other == name or re.search(rf"\b{other}\s*\(", bodies[name])}
        if helpers:
            actions[name] = actions[name] | {"s3:PutObjectTagging"}
    return actions


def s3_needed(crate, actions):
    """The S3 actions the crate's blob port calls need."""
    needed = set()
    for source in linked_sources(crate):
        for method in BLOB_CALL.findall(re.sub(r"//[^\n]*", "", source)):
            needed |= actions.get(method, set())
    return needed


class S3Grants(unittest.TestCase):
    """Each function may do with the media bucket exactly what its code does (read, write, tag, abort), plus
    ListBucket for the functions that read, so that a missing object answers 404 and not 403."""

    def test_every_adapter_call_is_in_the_sdk_to_iam_table(self):
        # `self.client.clone()` hands the client to a part writer; it is not a call to S3.
        self.assertEqual(client_calls_outside_the_table(S3_ADAPTER, S3_SDK_TO_IAM) - {"clone"}, set())

    def test_the_scan_sees_the_calls_it_must(self):
        actions = s3_adapter_actions()
        self.assertEqual(actions["presign_upload"], {"s3:PutObject", "s3:PutObjectTagging"}, "the pending tag")
        self.assertEqual(actions["read_range"], {"s3:GetObject"})
        self.assertEqual(actions["mark_kept"], {"s3:PutObjectTagging"})
        self.assertEqual(actions["abort"], {"s3:AbortMultipartUpload"}, "through the abort_upload helper")
        self.assertEqual(actions["copy"], {"s3:GetObject", "s3:PutObject"}, "CopyObject reads and writes")
        self.assertEqual(actions["delete"], {"s3:DeleteObject"})

    def test_the_publisher_copies_and_deletes_and_the_intake_deletes(self):
        actions = s3_adapter_actions()
        self.assertLessEqual({"s3:PutObject", "s3:DeleteObject"}, s3_needed(FUNCTIONS["PublisherFunction"], actions))
        self.assertIn("s3:DeleteObject", s3_needed(FUNCTIONS["IntakeApiFunction"], actions))

    def test_each_function_is_granted_exactly_the_s3_actions_its_code_calls(self):
        actions = s3_adapter_actions()
        for resource, crate in FUNCTIONS.items():
            with self.subTest(function=resource):
                needed = s3_needed(crate, actions)
                self.assertTrue(needed, f"{crate}: no blob call found; the scan is broken")
                if "s3:GetObject" in needed:
                    needed.add("s3:ListBucket")
                granted = granted_actions(resource, "s3")
                self.assertEqual(
                    granted,
                    needed,
                    f"{resource}: granted but unused {sorted(granted - needed)}, "
                    f"used but not granted {sorted(needed - granted)}",
                )


class EventBridgeGrants(unittest.TestCase):
    """Events go to the stack's own bus only, from the functions whose code publishes them."""

    def test_the_sink_calls_only_put_events(self):
        calls = set(CLIENT_CALL.findall(without_tests(EVENTBRIDGE_ADAPTER.read_text())))
        self.assertIn("put_events", calls)
        self.assertEqual(client_calls_outside_the_table(EVENTBRIDGE_ADAPTER, EVENTBRIDGE_SDK_TO_IAM), set())

    def test_each_function_that_publishes_may_put_events_on_the_bus_and_nothing_else(self):
        publishers = {resource for resource, crate in FUNCTIONS.items() if publishes_events(crate)}
        # Stated by hand as well as derived: every function announces what it does (media, posts, accounts).
        self.assertEqual(publishers, set(FUNCTIONS))
        for resource in FUNCTIONS:
            with self.subTest(function=resource):
                actions, resources = event_grants(resource)
                self.assertEqual(actions, {"events:PutEvents"})
                self.assertEqual(resources, {"EventBus.Arn"})


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


class SqsGrants(unittest.TestCase):
    """The timer queue and the media job queue: only the functions that use a port may send to its queue, and they may
    do nothing else with SQS."""

    def sqs_adapter_actions(self):
        self.assertTrue(SQS_ADAPTER.exists(), f"{SQS_ADAPTER.relative_to(ROOT)}: the adapter the grants are for")
        actions, unknown = adapter_actions(SQS_ADAPTER, SQS_SDK_TO_IAM)
        self.assertEqual(unknown, set())
        self.assertEqual(client_calls_outside_the_table(SQS_ADAPTER, SQS_SDK_TO_IAM), set())
        for method in (TIMER_METHOD, JOB_METHOD):
            self.assertIn(method, actions, f"the SQS adapter has no `fn {method}`")
        return actions

    def test_the_adapter_sends_wakeups_in_batches_and_jobs_one_by_one_and_needs_only_sqs_send_message(self):
        actions = self.sqs_adapter_actions()
        self.assertIn("send_message_batch", CLIENT_CALL.findall(without_tests(SQS_ADAPTER.read_text())))
        self.assertEqual(actions[TIMER_METHOD], {"sqs:SendMessage"})
        self.assertEqual(actions[JOB_METHOD], {"sqs:SendMessage"})

    def test_the_functions_that_arm_timers_are_the_intake_the_validator_the_worker_and_the_publisher(self):
        # Stated by hand as well as derived: a scan that finds no call at all must fail, not pass with no grants.
        found = {resource for resource, crate in FUNCTIONS.items() if arms_timers(crate)}
        self.assertEqual(found, TIMER_USERS)

    def test_the_functions_that_queue_media_jobs_are_the_intake_the_validator_and_the_worker(self):
        found = {resource for resource, crate in FUNCTIONS.items() if queues_jobs(crate)}
        self.assertEqual(found, JOB_USERS)

    def test_each_function_is_granted_exactly_the_sqs_actions_its_code_calls_on_exactly_the_queues_it_uses(self):
        actions = self.sqs_adapter_actions()
        for resource, crate in FUNCTIONS.items():
            with self.subTest(function=resource):
                needed = {queue: actions[method] for method, queue in QUEUE_OF.items() if queue in queues_needed(crate)}
                self.assertEqual(sqs_grants(resource), needed)

    def test_kms_through_sqs_is_granted_to_the_senders_and_the_consumers_only(self):
        consumers = set(timer_consumers()) | set(queue_consumers("MediaJobsQueue.Arn"))
        for resource, crate in FUNCTIONS.items():
            with self.subTest(function=resource):
                needed = set(SQS_SENDER_KMS) if queues_needed(crate) else set()
                if resource in consumers:
                    needed.add("kms:Decrypt")
                self.assertEqual(kms_through_sqs(resource), needed)

    def test_the_publisher_consumes_the_timer_queue_with_partial_batch_answers_under_its_reservation(self):
        consumers = timer_consumers()
        self.assertEqual(set(consumers), {"PublisherFunction"})
        event = consumers["PublisherFunction"]
        # The publisher answers {"batchItemFailures": [...]}: without this setting Lambda would ignore the answer and
        # delete the failed wakeups with the rest of the batch.
        self.assertIn("ReportBatchItemFailures", event.get("FunctionResponseTypes", []))
        reserved = template()["Resources"]["PublisherFunction"]["Properties"]["ReservedConcurrentExecutions"]
        self.assertLess(event["ScalingConfig"]["MaximumConcurrency"], reserved, "the mapping would be throttled")

    def test_the_worker_consumes_the_job_queue_one_job_at_a_time_within_its_reservation(self):
        consumers = queue_consumers("MediaJobsQueue.Arn")
        self.assertEqual(set(consumers), {"MediaWorkerFunction"})
        event = consumers["MediaWorkerFunction"]
        self.assertIn("ReportBatchItemFailures", event.get("FunctionResponseTypes", []))
        self.assertEqual(event["BatchSize"], 1, "each job gets the whole 15 minutes")
        worker = template()["Resources"]["MediaWorkerFunction"]["Properties"]
        self.assertLessEqual(event["ScalingConfig"]["MaximumConcurrency"], worker["ReservedConcurrentExecutions"])
        queue = template()["Resources"]["MediaJobsQueue"]["Properties"]
        self.assertGreaterEqual(queue["VisibilityTimeout"], worker["Timeout"], "a job would come back mid-run")

    def test_each_queue_url_reaches_exactly_the_functions_that_use_it(self):
        resources = template()["Resources"]
        for variable, users in (("TIMER_QUEUE_URL", TIMER_USERS), ("MEDIA_JOBS_QUEUE_URL", JOB_USERS)):
            for resource in FUNCTIONS:
                with self.subTest(function=resource, variable=variable):
                    variables = resources[resource]["Properties"].get("Environment", {}).get("Variables", {})
                    self.assertEqual(variable in variables, resource in users)
            self.assertNotIn(variable, template()["Globals"]["Function"]["Environment"]["Variables"])


if __name__ == "__main__":
    unittest.main()
