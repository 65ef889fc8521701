#!/usr/bin/env python3
"""Operator tools for a deployed Postato stack (docs/deploy.md, "Operations").

  rekey-tokens  re-encrypts every account's sealed TikTok tokens from the old TOKEN_ENCRYPTION_KEY to a new one, bound
                to their account and field
  bind-tokens   binds every account's tokens sealed before the binding existed, under the same key (after the deploy
                that introduced it; then TOKEN_ACCEPT_UNBOUND can be set to false)
  redrive       sends what waits in a failure queue back to its function (asynchronous invoke), or the timer's
                dead letters back to the timer queue with no delay, then deletes it

Needs boto3 and cryptography (`pip install -r infra/requirements-ops.txt`); AWS credentials and region from the usual
environment (AWS_PROFILE, AWS_REGION...; AWS_ENDPOINT_URL for moto). Keys are read from files (or `-` for stdin),
never from arguments, so they stay out of shell history and process lists; nothing here prints a key or a token.
"""

import argparse
import base64
import binascii
import json
import os
import sys

import boto3
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_LEN = 12
TAG_LEN = 16
# Each stored field and the word its binding carries.
TOKEN_FIELDS = {"accessToken": "access", "refreshToken": "refresh"}
BOUND_VERSION = "v2"
MAX_ATTEMPTS = 3


class OpsError(Exception):
    pass


# --- tokens ---------------------------------------------------------------------------------------------------------
# The format of shared/src/tiktok/cipher.rs: AES-256-GCM, a fresh 96-bit nonce per seal, base64 with the standard
# alphabet and padding. Bound (current): "v2:<field>:<account id>:" + base64(nonce || ciphertext || tag), the part
# before the base64 being the associated data. Unbound (before the binding): base64(nonce || ciphertext || tag)
# without associated data.


def load_key(path):
    if path == "-":
        raw = sys.stdin.read()
    else:
        with open(path, encoding="ascii") as file:
            raw = file.read()
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise OpsError(f"the key in {path} is not base64") from None
    if len(key) != 32:
        raise OpsError(f"the key in {path} is {len(key)} bytes; TOKEN_ENCRYPTION_KEY must be 32")
    return AESGCM(key)


def binding(account, field):
    """The clear header of a bound value, and its associated data (cipher.rs, `TokenBinding::header`)."""
    return f"{BOUND_VERSION}:{field}:{account}:"


def is_bound(sealed):
    return sealed.strip().startswith(BOUND_VERSION + ":")


def seal(cipher, plaintext, account, field, nonce=None):
    nonce = nonce or os.urandom(NONCE_LEN)
    header = binding(account, field)
    return header + base64.b64encode(nonce + cipher.encrypt(nonce, plaintext.encode(), header.encode())).decode()


def _decrypt(cipher, encoded, aad):
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(data) < NONCE_LEN + TAG_LEN:
        return None
    try:
        return cipher.decrypt(data[:NONCE_LEN], data[NONCE_LEN:], aad).decode()
    except (InvalidTag, UnicodeDecodeError):
        return None


def open_sealed(cipher, sealed, account, field):
    """The plaintext, or None unless this key sealed it for this account and field (or sealed it unbound)."""
    sealed = sealed.strip()
    if not is_bound(sealed):
        return _decrypt(cipher, sealed, None)
    header = binding(account, field)
    if not sealed.startswith(header) or ":" in sealed[len(header):]:
        return None
    return _decrypt(cipher, sealed[len(header):], header.encode())


def rekey_doc(doc, old, new):
    """Re-seals the tokens of one account document in place, under the new key and bound to the document's account:
    'resealed', 'current' (already bound under the new key), 'no-tokens', or raises OpsError when neither key opens
    them for this account (a value moved from another account or field never opens)."""
    tokens = doc.get("tokens")
    if not tokens:
        return "no-tokens"
    account = doc.get("id")
    if not isinstance(account, str) or not account:
        raise OpsError("the account document has no id")
    opened = {}
    for name, field in TOKEN_FIELDS.items():
        sealed = tokens.get(name)
        if not isinstance(sealed, str):
            raise OpsError(f"{name} is missing")
        if is_bound(sealed) and open_sealed(new, sealed, account, field) is not None:
            continue
        plaintext = open_sealed(old, sealed, account, field)
        if plaintext is None and not is_bound(sealed):
            # Unbound under the new key already: an interrupted rotation of a value sealed before the binding.
            plaintext = open_sealed(new, sealed, account, field)
        if plaintext is None:
            raise OpsError(f"{name} opens with neither key for this account and field")
        opened[name] = plaintext
    if not opened:
        return "current"
    for name, plaintext in opened.items():
        tokens[name] = seal(new, plaintext, account, TOKEN_FIELDS[name])
    return "resealed"


def account_items(dynamodb, table):
    kwargs = dict(
        TableName=table,
        FilterExpression="begins_with(pk, :account)",
        ExpressionAttributeValues={":account": {"S": "ACCT#"}},
        ProjectionExpression="pk, sk",
    )
    while True:
        page = dynamodb.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def rekey_account(dynamodb, table, key, old, new, dry_run):
    """Re-seals one account with a compare-and-set on its version, as the application writes it (the `version`
    attribute and the document's `version` move together), re-reading after a lost race."""
    for _ in range(MAX_ATTEMPTS):
        item = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return "gone"
        doc = json.loads(item["doc"]["S"])
        version = int(item["version"]["N"])
        outcome = rekey_doc(doc, old, new)
        if outcome != "resealed" or dry_run:
            return outcome
        doc["version"] = version + 1
        try:
            dynamodb.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #doc = :doc, #version = :next",
                ConditionExpression="#version = :expected",
                ExpressionAttributeNames={"#doc": "doc", "#version": "version"},
                ExpressionAttributeValues={
                    ":doc": {"S": json.dumps(doc, separators=(",", ":"))},
                    ":next": {"N": str(version + 1)},
                    ":expected": {"N": str(version)},
                },
            )
            return outcome
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue
    raise OpsError("it kept changing; pause the functions first")


def rekey_tokens(args):
    old, new = load_key(args.old_key_file), load_key(args.new_key_file)
    return reseal_all(args, old, new)


def bind_tokens(args):
    key = load_key(args.key_file)
    return reseal_all(args, key, key)


def reseal_all(args, old, new):
    dynamodb = boto3.client("dynamodb")
    counts, failed = {}, []
    for key in account_items(dynamodb, args.table):
        account = key["pk"]["S"]
        try:
            outcome = rekey_account(dynamodb, args.table, key, old, new, args.dry_run)
        except OpsError as error:
            failed.append(account)
            print(f"{account}: {error}", file=sys.stderr)
            continue
        counts[outcome] = counts.get(outcome, 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no accounts"
    print(("dry run: " if args.dry_run else "") + summary + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


# --- failure queues -------------------------------------------------------------------------------------------------


def payload_of(body):
    """The event to send again. A Lambda on-failure destination wraps it as `requestPayload` beside the request and
    response context; an EventBridge rule's dead-letter queue holds the event itself."""
    record = json.loads(body)
    if isinstance(record, dict) and "requestContext" in record and "requestPayload" in record:
        return record["requestPayload"]
    return record


def is_timer_message(body):
    """A message of the publisher's timer queue: {"wakeups": [{"postId": ..., "at": ...}, ...]}."""
    try:
        message = json.loads(body)
    except ValueError:
        return False
    wakeups = message.get("wakeups") if isinstance(message, dict) else None
    return isinstance(wakeups, list) and all(
        isinstance(w, dict) and isinstance(w.get("postId"), str) and isinstance(w.get("at"), str) for w in wakeups
    )


def redrive(args):
    """To a function: each payload by asynchronous invoke. To a queue (the timer's dead letters): each timer message
    as it is, with DelaySeconds 0, so its posts are looked at now (they are overdue; the publisher re-arms whatever
    is not due yet). A message is deleted only once it was sent again; one that is not a timer message stays."""
    sqs = boto3.client("sqs")
    lam = None if args.dry_run or args.to_queue_url else boto3.client("lambda")
    target = args.to_queue_url or args.function_name
    seen, sent, refused = set(), 0, 0
    while sent < args.max:
        messages = sqs.receive_message(
            QueueUrl=args.queue_url,
            MaxNumberOfMessages=min(10, args.max - sent),
            WaitTimeSeconds=1,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            if args.to_queue_url:
                if not is_timer_message(message["Body"]):
                    print(f"{message['MessageId']}: not a timer message; left in the queue", file=sys.stderr)
                    refused += 1
                    continue
                if args.dry_run:
                    print(message["Body"])
                else:
                    attributes = message.get("MessageAttributes")
                    sqs.send_message(
                        QueueUrl=args.to_queue_url,
                        MessageBody=message["Body"],
                        DelaySeconds=0,
                        **({"MessageAttributes": attributes} if attributes else {}),
                    )
            else:
                payload = payload_of(message["Body"])
                if args.dry_run:
                    print(json.dumps(payload, separators=(",", ":")))
                else:
                    lam.invoke(FunctionName=args.function_name, InvocationType="Event", Payload=json.dumps(payload))
            if not args.dry_run:
                sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
            sent += 1
    verb = "would re-drive" if args.dry_run else "re-drove"
    print(f"{verb} {sent} message(s) to {target}" + (f", {refused} left" if refused else ""), file=sys.stderr)
    return 1 if refused else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rekey = commands.add_parser("rekey-tokens", help="re-encrypt account tokens under a new TOKEN_ENCRYPTION_KEY")
    rekey.add_argument("--table", required=True, help="the stack's TableName output")
    rekey.add_argument("--old-key-file", required=True, help="file holding the current key (base64), or -")
    rekey.add_argument("--new-key-file", required=True, help="file holding the new key (base64)")
    rekey.add_argument("--dry-run", action="store_true", help="open every token, write nothing")
    rekey.set_defaults(run=rekey_tokens)
    bind = commands.add_parser(
        "bind-tokens", help="bind tokens sealed before the account binding to their account and field (same key)"
    )
    bind.add_argument("--table", required=True, help="the stack's TableName output")
    bind.add_argument("--key-file", required=True, help="file holding the current key (base64), or -")
    bind.add_argument("--dry-run", action="store_true", help="open every token, write nothing")
    bind.set_defaults(run=bind_tokens)
    again = commands.add_parser(
        "redrive", help="send a failure queue's events back to their function, or timer dead letters to the timer"
    )
    again.add_argument("--queue-url", required=True, help="MediaValidatorFailuresUrl, or TimerDeadLettersUrl")
    target = again.add_mutually_exclusive_group(required=True)
    target.add_argument("--function-name", help="the function a failure queue belongs to (asynchronous invoke)")
    target.add_argument("--to-queue-url", help="TimerQueueUrl: send timer dead letters back there, without delay")
    again.add_argument("--max", type=int, default=1000, help="stop after this many messages")
    again.add_argument("--dry-run", action="store_true", help="print the payloads; invoke, send and delete nothing")
    again.set_defaults(run=redrive)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except OpsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
