"""A plain producer, as platforms write them by hand: boto3, one SendMessage per event.

It is written carefully, and `conformance run` passes it: each vector line is sent as the
message body as it is (never parsed and re-serialized, so no number, escape or key order
changes), with only the two characters SQS refuses raw in a body that valid JSON can hold
(U+FFFE and U+FFFF, inside strings) written as escapes. On a FIFO queue the message group is
the event's source and the deduplication id is derived from its source and id, so a retry
within five minutes is not delivered twice.

Run by the kit as: python boto3_producer.py  (CE_VECTORS and CE_CONFIG in the environment)
"""

import hashlib
import json
import os

import boto3


def main():
    with open(os.environ["CE_CONFIG"], encoding="utf-8") as f:
        config = json.load(f)
    client = boto3.client(
        "sqs",
        region_name=config["region"],
        endpoint_url=config.get("endpoint"),
        aws_access_key_id=config["accessKey"],
        aws_secret_access_key=config["accessSecret"],
    )
    queue_url = config["queueURL"]
    fifo = queue_url.endswith(".fifo")
    with open(os.environ["CE_VECTORS"], encoding="utf-8", newline="\n") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            body = line.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
            request = {"QueueUrl": queue_url, "MessageBody": body}
            if fifo:
                event = json.loads(line)
                request["MessageGroupId"] = event["source"]
                key = f'{event["source"]}\n{event["id"]}'.encode("utf-8")
                request["MessageDeduplicationId"] = hashlib.sha256(key).hexdigest()
            client.send_message(**request)


if __name__ == "__main__":
    main()
