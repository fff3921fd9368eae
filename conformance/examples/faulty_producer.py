"""A deliberately faulty producer, for showing what `conformance run` catches.

Three faults that hand-written integrations have:
- numbers go through floats: each event is parsed and re-serialized, and every number becomes
  a double (`1.50` becomes `1.5`, big integers lose digits, `1e400` becomes `Infinity`);
- an attribute is dropped: `datacontenttype` never reaches the queue;
- the last event is lost (an off-by-one in the send loop).

Run by the kit as: python faulty_producer.py  (CE_VECTORS and CE_CONFIG in the environment)
"""

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
    with open(os.environ["CE_VECTORS"], encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    for line in lines[:-1]:
        event = json.loads(line, parse_int=float)
        event.pop("datacontenttype", None)
        client.send_message(QueueUrl=config["queueURL"], MessageBody=json.dumps(event))


if __name__ == "__main__":
    main()
