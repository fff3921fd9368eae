"""Events made by a third-party SDK, the Python CloudEvents SDK, sent to SQS in both content modes.

The SDK knows the HTTP binding, not SQS; this maps its binary-mode headers to String message
attributes of the same names (`ce-*`, `content-type`) and its structured-mode body to the
message body, with `content-type: application/cloudevents+json` beside it, as an SQS producer
built on the SDK would. `conformance check` must pass all of them.

Usage: python cloudevents_sdk_producer.py QUEUE_URL   (endpoint, region and keys from the
usual AWS environment variables)
"""

import sys

import boto3
from cloudevents.v1.conversion import to_binary, to_structured
from cloudevents.v1.http import CloudEvent

EVENTS = [
    (
        {"type": "com.example.reading", "source": "https://example.com/sensors/1", "id": "sdk-json",
         "datacontenttype": "application/json", "subject": "temperature"},
        {"celsius": 21.5, "labels": ["a", "b"]},
    ),
    (
        {"type": "com.example.note", "source": "/notes", "id": "sdk-text",
         "datacontenttype": "text/plain", "tenant": "acme"},
        "plain text, \"quoted\"",
    ),
    (
        {"type": "com.example.ping", "source": "urn:example:pinger", "id": "sdk-implicit"},
        {"n": 1},
    ),
]


def attributes(headers):
    return {name: {"DataType": "String", "StringValue": value} for name, value in headers.items()}


def main():
    queue_url = sys.argv[1]
    client = boto3.client("sqs")
    for context, data in EVENTS:
        for mode, convert in (("binary", to_binary), ("structured", to_structured)):
            event = CloudEvent({**context, "id": f'{context["id"]}-{mode}'}, data)
            headers, body = convert(event)
            client.send_message(
                QueueUrl=queue_url,
                MessageBody=body.decode("utf-8"),
                MessageAttributes=attributes(headers),
            )


if __name__ == "__main__":
    main()
