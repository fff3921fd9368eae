//! From a validated event to the message SQS gets: body, attributes, FIFO group and
//! deduplication ids. Shared by `send` and `serve`.

use crate::batch::{cloudevents_attributes, dedup_id, group_id};
use crate::encode::encode;
use crate::event::Event;
use crate::sqs::Outgoing;

/// Which message attributes go beside the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AttributeMode {
    /// None: the body carries everything.
    #[default]
    None,
    /// `ce-*` attributes and `content-type`, as String attributes.
    Cloudevents,
}

/// How events become messages.
#[derive(Debug, Clone, Default)]
pub struct MessageOptions {
    /// Message attributes.
    pub attributes: AttributeMode,
    /// The attribute whose value is the message group (FIFO queues default to `source`).
    pub group_by: Option<String>,
    /// Whether the queue is FIFO: group and deduplication ids are required.
    pub fifo: bool,
}

/// Builds the message for `event`; fails when a FIFO queue needs a group attribute the event
/// lacks.
pub fn to_message(event: &Event, options: &MessageOptions) -> Result<Outgoing, String> {
    let attributes = match options.attributes {
        AttributeMode::None => Vec::new(),
        AttributeMode::Cloudevents => cloudevents_attributes(event),
    };
    let group_by = options
        .group_by
        .as_deref()
        .or(options.fifo.then_some("source"));
    let group = match group_by {
        Some(name) => match event.attribute_str(name) {
            Some(value) => Some(group_id(value)),
            None if options.fifo => {
                return Err(format!(
                    "attribute `{name}`: needed as the FIFO message group (--group-by), but missing"
                ));
            }
            None => None,
        },
        None => None,
    };
    let dedup = options.fifo.then(|| dedup_id(event.source(), event.id()));
    Ok(Outgoing {
        body: encode(event),
        attributes,
        group_id: group,
        dedup_id: dedup,
    })
}
