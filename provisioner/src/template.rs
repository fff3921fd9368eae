//! `provisioner template`: a CloudFormation template (JSON) that a customer deploys in their
//! own account, creating what `apply --auth role` would: the queue, the role, its trust policy
//! and the send-only inline policy, from the same names and policy functions. Pure.

use serde_json::{Map, Value, json};

use crate::names::{AccountId, ExternalId, POLICY_NAME, Region};
use crate::plan::{QUEUE_POLICY, queue_attributes};
use crate::policy::{self, QueueArn, send_policy, trust_policy};
use crate::{Auth, ProvisionError, Spec};

/// Region prefixes of partitions whose ARNs this template does not write.
const UNSUPPORTED_PARTITIONS: [(&str, &str); 5] = [
    ("us-isob-", "aws-iso-b"),
    ("us-isof-", "aws-iso-f"),
    ("us-iso-", "aws-iso"),
    ("eu-isoe-", "aws-iso-e"),
    ("eusc-", "aws-eusc"),
];

/// A printed template and the external id it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template, pretty-printed JSON.
    pub text: String,
    /// The external id in its trust policy (generated when the spec has none).
    pub external_id: String,
}

/// The CloudFormation template for `spec` (role mode) in `region`'s partition.
pub fn cloudformation(spec: &Spec, region: &str) -> Result<Template, ProvisionError> {
    let Auth::Role {
        trust_account,
        external_id,
    } = &spec.auth
    else {
        return Err(ProvisionError::Usage(
            "a template is for --auth role: a customer's account gives a role, not a key".into(),
        ));
    };
    let trust_account = trust_account.as_deref().ok_or_else(|| {
        ProvisionError::Usage(
            "template needs --trust-account, the platform's 12-digit account".into(),
        )
    })?;
    let region = Region::new(region)?;
    if let Some((_, partition)) = UNSUPPORTED_PARTITIONS
        .iter()
        .find(|(prefix, _)| region.as_str().starts_with(prefix))
    {
        return Err(ProvisionError::Usage(format!(
            "region `{region}` is in partition {partition}, whose ARNs this template cannot express"
        )));
    }
    let account = AccountId::new(trust_account)?;
    let external_id = match external_id {
        Some(id) => ExternalId::new(id)?,
        None => ExternalId::generate(),
    };
    let names = spec.names()?;
    let trust = trust_policy(region.partition(), &account, &external_id);
    // The queue's ARN is the customer's, known only once deployed: the policy's statements
    // come from `send_policy` and point at the queue through `Fn::GetAtt`.
    let mut policy = send_policy(&QueueArn::new(&region, &account, &names.queue)).to_value();
    for statement in policy["Statement"].as_array_mut().into_iter().flatten() {
        statement["Resource"] = json!({"Fn::GetAtt": ["Queue", "Arn"]});
    }
    let tags: Vec<Value> = names
        .tags()
        .into_iter()
        .map(|(key, value)| json!({"Key": key, "Value": value}))
        .collect();
    let tags = Value::Array(tags);
    let queue_arn = QueueArn::new(&region, &account, &names.queue);
    // The queue policy is a resource of its own in CloudFormation, pointing at the queue.
    let mut queue_policy = policy::queue_policy(&queue_arn);
    for statement in queue_policy["Statement"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        statement["Resource"] = json!({"Fn::GetAtt": ["Queue", "Arn"]});
    }
    let mut queue: Map<String, Value> = queue_attributes(names.queue.is_fifo(), &queue_arn, None)
        .into_iter()
        .filter(|(key, _)| key != QUEUE_POLICY)
        .map(|(key, value)| (key, Value::String(value)))
        .collect();
    queue.insert("QueueName".into(), json!(names.queue.as_str()));
    queue.insert("Tags".into(), tags.clone());
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": format!(
            "SQS queue {} and role {} that account {account} may assume with its external id, allowed only sqs:SendMessage on the queue ({region})",
            names.queue, names.principal
        ),
        "Resources": {
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": queue},
            "QueuePolicy": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": queue_policy}
            },
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": names.principal.as_str(),
                    "AssumeRolePolicyDocument": trust.to_value(),
                    "Policies": [{"PolicyName": POLICY_NAME, "PolicyDocument": policy}],
                    "Tags": tags,
                }
            }
        },
        "Outputs": {
            "QueueUrl": {"Value": {"Ref": "Queue"}},
            "QueueArn": {"Value": {"Fn::GetAtt": ["Queue", "Arn"]}},
            "RoleArn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}},
            "ExternalId": {"Value": external_id.as_str()},
        }
    });
    Ok(Template {
        text: serde_json::to_string_pretty(&template).unwrap_or_default(),
        external_id: external_id.as_str().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(trust_account: Option<&str>, external_id: Option<&str>) -> Spec {
        Spec {
            auth: Auth::Role {
                trust_account: trust_account.map(str::to_owned),
                external_id: external_id.map(str::to_owned),
            },
            ..Spec::new("orders")
        }
    }

    fn check_refused(spec: &Spec, region: &str, expected: &str) {
        let error = cloudformation(spec, region)
            .expect_err("refused")
            .to_string();
        assert!(error.contains(expected), "{error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }

    #[test]
    fn the_template_holds_the_same_policies_as_apply() {
        let spec = role(Some("111122223333"), Some("platform-id-1"));
        let template = cloudformation(&spec, "eu-west-1").expect("template");
        let value: Value = serde_json::from_str(&template.text).expect("json");
        let role = &value["Resources"]["Role"]["Properties"];
        assert_eq!(role["RoleName"], "orders-forwarder");
        assert_eq!(
            role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(
            role["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            "platform-id-1"
        );
        let statements = role["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .expect("statements");
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["Action"], "sqs:SendMessage");
        assert_eq!(
            statements[0]["Resource"],
            json!({"Fn::GetAtt": ["Queue", "Arn"]})
        );
        assert_eq!(
            value["Resources"]["Queue"]["Properties"]["QueueName"],
            "orders"
        );
        assert_eq!(value["Outputs"]["ExternalId"]["Value"], "platform-id-1");
    }

    #[test]
    fn a_fifo_template_names_a_fifo_queue() {
        let spec = Spec {
            fifo: true,
            ..role(Some("111122223333"), None)
        };
        let value: Value =
            serde_json::from_str(&cloudformation(&spec, "us-east-1").expect("template").text)
                .expect("json");
        let queue = &value["Resources"]["Queue"]["Properties"];
        assert_eq!(queue["QueueName"], "orders.fifo");
        assert_eq!(queue["FifoQueue"], "true");
    }

    #[test]
    fn bad_input_is_refused_in_one_line() {
        check_refused(&role(None, None), "eu-west-1", "--trust-account");
        check_refused(&Spec::new("orders"), "eu-west-1", "--auth role");
        let spec = role(Some("111122223333"), None);
        check_refused(&spec, "us-iso-east-1", "aws-iso");
        check_refused(&spec, "eusc-de-east-1", "aws-eusc");
        check_refused(&spec, "Not A Region", "region");
        check_refused(&role(Some("1234"), None), "eu-west-1", "account");
    }
}
