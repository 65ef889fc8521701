"""Tests of postato_ops.py: token re-encryption and binding, failure-queue payloads and timer dead letters, against moto (POSTATO_MOTO_ENDPOINT, as
infra/test.sh starts it). Without moto the moto-backed tests are skipped, unless POSTATO_FULL_TESTS=1.

    POSTATO_MOTO_ENDPOINT=http://127.0.0.1:5000 .venv/test/bin/python -m unittest discover -s infra/scripts -v
"""

import base64
import contextlib
import io
import json
import os
import tempfile
import unittest
import unittest.mock
import uuid

import boto3
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import postato_ops as ops

ENDPOINT = os.environ.get("POSTATO_MOTO_ENDPOINT", "").strip()
FULL = os.environ.get("POSTATO_FULL_TESTS", "").strip() not in ("", "0", "false")
OLD_KEY = base64.b64encode(bytes(range(32))).decode()
NEW_KEY = base64.b64encode(bytes(range(32, 64))).decode()


def needs_moto(test):
    if ENDPOINT:
        return test
    if FULL:
        raise RuntimeError("POSTATO_FULL_TESTS=1 but POSTATO_MOTO_ENDPOINT is not set")
    return unittest.skip("POSTATO_MOTO_ENDPOINT not set")(test)


def cipher(key):
    return AESGCM(base64.b64decode(key))


ACCOUNT = "acc_01HZX3V8Q6Y2M4N5P7R9S1T3W5"
OTHER_ACCOUNT = "acc_01HZX3V8Q6Y2M4N5P7R9S1T3W6"


def sealed_unbound(cipher, plaintext):
    """A value as the application sealed it before the account binding: no associated data, no header."""
    nonce = os.urandom(ops.NONCE_LEN)
    return base64.b64encode(nonce + cipher.encrypt(nonce, plaintext.encode(), None)).decode()


class TokenFormat(unittest.TestCase):
    def test_a_sealed_token_opens_only_with_its_key_account_and_field(self):
        sealed = ops.seal(cipher(OLD_KEY), "act.secret", ACCOUNT, "access")
        self.assertTrue(sealed.startswith(f"v2:access:{ACCOUNT}:"))
        self.assertEqual(ops.open_sealed(cipher(OLD_KEY), sealed, ACCOUNT, "access"), "act.secret")
        self.assertIsNone(ops.open_sealed(cipher(NEW_KEY), sealed, ACCOUNT, "access"))
        self.assertIsNone(ops.open_sealed(cipher(OLD_KEY), sealed, OTHER_ACCOUNT, "access"))
        self.assertIsNone(ops.open_sealed(cipher(OLD_KEY), sealed, ACCOUNT, "refresh"))
        relabelled = sealed.replace(ACCOUNT, OTHER_ACCOUNT)
        self.assertIsNone(ops.open_sealed(cipher(OLD_KEY), relabelled, OTHER_ACCOUNT, "access"))
        self.assertIsNone(ops.open_sealed(cipher(OLD_KEY), "not base64 %%", ACCOUNT, "access"))

    def test_an_unbound_token_opens_for_any_binding_with_its_key(self):
        unbound = sealed_unbound(cipher(OLD_KEY), "rft.before")
        self.assertFalse(ops.is_bound(unbound))
        self.assertEqual(ops.open_sealed(cipher(OLD_KEY), unbound, ACCOUNT, "refresh"), "rft.before")
        self.assertIsNone(ops.open_sealed(cipher(NEW_KEY), unbound, ACCOUNT, "refresh"))

    def test_the_rust_cipher_vectors_are_reproduced(self):
        # shared/src/tiktok/cipher.rs seals the bound vector byte for byte and opens both
        # (a_value_sealed_by_the_ops_script_opens_here_and_this_side_seals_the_same_bytes).
        key = AESGCM(bytes([1]) * 32)
        bound = ("v2:refresh:acc_01HZX3V8Q6Y2M4N5P7R9S1T3W5:"
                 "AgICAgICAgICAgICdbC9Zy8voJCjoNnlKMip18w2pJ50Cj22koyYKH68EQRO")
        self.assertEqual(ops.seal(key, "rft.example-token", ACCOUNT, "refresh", nonce=bytes([2]) * 12), bound)
        self.assertEqual(ops.open_sealed(key, bound, ACCOUNT, "refresh"), "rft.example-token")
        unbound = "AgICAgICAgICAgICZrW9Zy8voJCjoNnlKMip18wOFWf3BGVvT089+/kLWDyf"
        self.assertEqual(ops.open_sealed(key, unbound, ACCOUNT, "access"), "act.example-token")

    def test_a_key_of_the_wrong_length_is_refused_without_showing_it(self):
        with tempfile.NamedTemporaryFile("w", suffix=".key") as short:
            short.write(base64.b64encode(b"sixteen byte key").decode())
            short.flush()
            with self.assertRaises(ops.OpsError) as raised:
                ops.load_key(short.name)
        self.assertIn("16 bytes", str(raised.exception))
        self.assertNotIn("c2l4dGVlbi", str(raised.exception))


class FailurePayloads(unittest.TestCase):
    def test_a_lambda_destination_record_gives_back_its_request_payload(self):
        event = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "uploads/med_1"}}}]}
        record = {"version": "1.0", "requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event,
                  "responseContext": {"statusCode": 200}, "responsePayload": {"errorType": "Retryable"}}
        self.assertEqual(ops.payload_of(json.dumps(record)), event)

    def test_an_eventbridge_dead_letter_is_the_event_itself(self):
        event = {"detail-type": "post.published", "detail": {"postId": "post_2"}, "requestPayload": "not a wrapper"}
        self.assertEqual(ops.payload_of(json.dumps(event)), event)


@needs_moto
class AgainstMoto(unittest.TestCase):
    def setUp(self):
        self.env = contextlib.ExitStack()
        for name, value in {"AWS_ENDPOINT_URL": ENDPOINT, "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            self.env.enter_context(unittest.mock.patch.dict(os.environ, {name: value}))
        self.addCleanup(self.env.close)
        self.keys = tempfile.TemporaryDirectory()
        self.addCleanup(self.keys.cleanup)
        for name, key in (("old", OLD_KEY), ("new", NEW_KEY)):
            with open(os.path.join(self.keys.name, name), "w") as f:
                f.write(key + "\n")

    def key_file(self, name):
        return os.path.join(self.keys.name, name)

    def table_with_accounts(self):
        dynamodb = boto3.client("dynamodb")
        table = f"postato-ops-{uuid.uuid4().hex[:12]}"
        dynamodb.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])

        def put(pk, sk, doc, version):
            dynamodb.put_item(TableName=table, Item={
                "pk": {"S": pk}, "sk": {"S": sk}, "doc": {"S": json.dumps(doc)}, "version": {"N": str(version)},
                "open_id": {"S": "open-1"}})

        old = cipher(OLD_KEY)
        # acc_1 predates the binding; acc_3 was sealed bound by the application; acc_4 holds acc_1's refresh token.
        unbound = {"accessToken": sealed_unbound(old, "act.one"), "accessExpiresAt": "2026-12-01T00:00:00Z",
                   "refreshToken": sealed_unbound(old, "rft.one"), "refreshExpiresAt": "2027-06-01T00:00:00Z"}
        put("ACCT#acc_1", "ACCT", {"id": "acc_1", "status": "connected", "tokens": unbound, "version": 3}, 3)
        put("ACCT#acc_2", "ACCT", {"id": "acc_2", "status": "disconnected", "version": 1}, 1)
        bound = {"accessToken": ops.seal(old, "act.three", "acc_3", "access"), "accessExpiresAt": "2026-12-01T00:00:00Z",
                 "refreshToken": ops.seal(old, "rft.three", "acc_3", "refresh"),
                 "refreshExpiresAt": "2027-06-01T00:00:00Z"}
        put("ACCT#acc_3", "ACCT", {"id": "acc_3", "status": "connected", "tokens": bound, "version": 7}, 7)
        put("POST#post_1", "POST", {"id": "post_1", "version": 1}, 1)
        return dynamodb, table

    def put_moved_refresh_token(self, dynamodb, table):
        """acc_4 whose refresh token is acc_3's, copied as it is stored."""
        doc = self.doc(dynamodb, table, "acc_3")
        doc["id"], doc["version"] = "acc_4", 1
        doc["tokens"]["accessToken"] = ops.seal(cipher(OLD_KEY), "act.four", "acc_4", "access")
        dynamodb.put_item(TableName=table, Item={
            "pk": {"S": "ACCT#acc_4"}, "sk": {"S": "ACCT"}, "doc": {"S": json.dumps(doc)}, "version": {"N": "1"}})

    def item(self, dynamodb, table, account):
        return dynamodb.get_item(TableName=table, Key={"pk": {"S": f"ACCT#{account}"}, "sk": {"S": "ACCT"}})["Item"]

    def doc(self, dynamodb, table, account):
        return json.loads(self.item(dynamodb, table, account)["doc"]["S"])

    def run_ops(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = ops.main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_rekey_reseals_every_account_bound_under_the_new_key_and_bumps_its_version_once(self):
        dynamodb, table = self.table_with_accounts()
        args = ("rekey-tokens", "--table", table, "--old-key-file", self.key_file("old"),
                "--new-key-file", self.key_file("new"))

        code, out, _ = self.run_ops(*args, "--dry-run")
        self.assertEqual((code, out.strip()), (0, "dry run: 1 no-tokens, 2 resealed"))
        code, out, _ = self.run_ops(*args)
        self.assertEqual((code, out.strip()), (0, "1 no-tokens, 2 resealed"))

        item = self.item(dynamodb, table, "acc_1")
        doc = json.loads(item["doc"]["S"])
        self.assertEqual((item["version"]["N"], doc["version"]), ("4", 4))
        self.assertEqual(item["open_id"]["S"], "open-1")
        new, old = cipher(NEW_KEY), cipher(OLD_KEY)
        self.assertTrue(doc["tokens"]["accessToken"].startswith("v2:access:acc_1:"))
        self.assertEqual(ops.open_sealed(new, doc["tokens"]["accessToken"], "acc_1", "access"), "act.one")
        self.assertEqual(ops.open_sealed(new, doc["tokens"]["refreshToken"], "acc_1", "refresh"), "rft.one")
        self.assertIsNone(ops.open_sealed(old, doc["tokens"]["accessToken"], "acc_1", "access"))
        self.assertEqual(doc["tokens"]["accessExpiresAt"], "2026-12-01T00:00:00Z")
        bound = self.doc(dynamodb, table, "acc_3")
        self.assertEqual(ops.open_sealed(new, bound["tokens"]["refreshToken"], "acc_3", "refresh"), "rft.three")
        self.assertEqual(bound["version"], 8)

        # A second run (interrupted rotation, re-run) finds everything current and writes nothing.
        code, out, _ = self.run_ops(*args)
        self.assertEqual((code, out.strip()), (0, "2 current, 1 no-tokens"))
        self.assertEqual(self.item(dynamodb, table, "acc_1")["version"]["N"], "4")

    def test_bind_binds_unbound_tokens_under_the_same_key_and_leaves_bound_ones(self):
        dynamodb, table = self.table_with_accounts()
        args = ("bind-tokens", "--table", table, "--key-file", self.key_file("old"))

        code, out, _ = self.run_ops(*args, "--dry-run")
        self.assertEqual((code, out.strip()), (0, "dry run: 1 current, 1 no-tokens, 1 resealed"))
        self.assertFalse(ops.is_bound(self.doc(dynamodb, table, "acc_1")["tokens"]["accessToken"]))
        code, out, _ = self.run_ops(*args)
        self.assertEqual((code, out.strip()), (0, "1 current, 1 no-tokens, 1 resealed"))

        old = cipher(OLD_KEY)
        tokens = self.doc(dynamodb, table, "acc_1")["tokens"]
        self.assertEqual(ops.open_sealed(old, tokens["accessToken"], "acc_1", "access"), "act.one")
        self.assertEqual(ops.open_sealed(old, tokens["refreshToken"], "acc_1", "refresh"), "rft.one")
        self.assertIsNone(ops.open_sealed(old, tokens["refreshToken"], "acc_1", "access"))
        self.assertEqual(self.item(dynamodb, table, "acc_3")["version"]["N"], "7", "already bound: not written")
        code, out, _ = self.run_ops(*args)
        self.assertEqual((code, out.strip()), (0, "2 current, 1 no-tokens"))

    def test_a_token_moved_from_another_account_is_never_rebound_to_its_new_place(self):
        dynamodb, table = self.table_with_accounts()
        self.put_moved_refresh_token(dynamodb, table)

        code, out, err = self.run_ops("rekey-tokens", "--table", table, "--old-key-file", self.key_file("old"),
                                      "--new-key-file", self.key_file("new"))

        self.assertEqual(code, 1)
        self.assertIn("ACCT#acc_4: refreshToken opens with neither key for this account and field", err)
        self.assertIn("1 failed", out)
        self.assertEqual(self.item(dynamodb, table, "acc_4")["version"]["N"], "1", "left as it was")

    def test_tokens_neither_key_opens_fail_the_run_naming_the_account_only(self):
        dynamodb, table = self.table_with_accounts()
        code, out, err = self.run_ops("rekey-tokens", "--table", table, "--old-key-file", self.key_file("new"),
                                      "--new-key-file", self.key_file("new"))
        self.assertEqual(code, 1)
        self.assertIn("ACCT#acc_1: accessToken opens with neither key", err)
        self.assertIn("2 failed", out)
        self.assertNotIn("act.one", out + err)

    def queue(self, **attributes):
        sqs = boto3.client("sqs")
        name = f"postato-ops-{uuid.uuid4().hex[:12]}"
        return sqs, sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def messages_left(self, sqs, queue):
        counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(n) for n in counts.values())

    def test_redrive_dry_run_prints_each_payload_and_keeps_the_messages(self):
        sqs, queue = self.queue()
        uploaded = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "uploads/med_1"}}}]}
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(
            {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": uploaded}))
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(uploaded))

        code, out, err = self.run_ops("redrive", "--queue-url", queue, "--function-name", "media-validator",
                                      "--dry-run")

        self.assertEqual(code, 0)
        self.assertEqual([json.loads(line) for line in out.splitlines()], [uploaded, uploaded])
        self.assertIn("would re-drive 2 message(s) to media-validator", err)
        self.assertEqual(self.messages_left(sqs, queue), 2)

    def timer_dead_letters(self, *bodies):
        sqs, dead = self.queue()
        for body in bodies:
            sqs.send_message(QueueUrl=dead, MessageBody=body if isinstance(body, str) else json.dumps(body))
        return dead

    def test_timer_dead_letters_go_back_to_the_timer_queue_at_once_and_leave_the_dead_letter_queue(self):
        # The timer queue's default delay is the longest there is: only an explicit DelaySeconds 0 on each message
        # makes the wakeups receivable at once.
        sqs, timer = self.queue(DelaySeconds="900")
        first = {"wakeups": [{"postId": "post_1", "at": "2026-12-04T09:00:00Z"},
                             {"postId": "post_2", "at": "2026-12-04T09:00:00Z"}]}
        second = {"wakeups": [{"postId": "post_3", "at": "2026-12-04T09:00:07Z"}]}
        dead = self.timer_dead_letters(first, second, "not a timer message")

        code, _, err = self.run_ops("redrive", "--queue-url", dead, "--to-queue-url", timer)

        self.assertEqual(code, 1, "the message that is not a timer message is reported")
        self.assertIn(f"re-drove 2 message(s) to {timer}, 1 left", err)
        self.assertIn("not a timer message; left in the queue", err)
        received = sqs.receive_message(QueueUrl=timer, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        self.assertEqual(sorted(json.loads(m["Body"])["wakeups"][0]["postId"] for m in received.get("Messages", [])),
                         ["post_1", "post_3"])
        self.assertEqual(self.messages_left(sqs, dead), 1, "only the foreign message stays")

    def test_timer_dead_letters_dry_run_prints_them_and_sends_nothing(self):
        sqs, timer = self.queue()
        wakeups = {"wakeups": [{"postId": "post_1", "at": "2026-12-04T09:00:00Z"}]}
        dead = self.timer_dead_letters(wakeups)

        code, out, err = self.run_ops("redrive", "--queue-url", dead, "--to-queue-url", timer, "--dry-run")

        self.assertEqual(code, 0)
        self.assertEqual([json.loads(line) for line in out.splitlines()], [wakeups])
        self.assertIn(f"would re-drive 1 message(s) to {timer}", err)
        self.assertEqual(self.messages_left(sqs, timer), 0)
        self.assertEqual(self.messages_left(sqs, dead), 1)


if __name__ == "__main__":
    unittest.main()
