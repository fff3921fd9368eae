//! proptest strategies for valid inputs: queue names, regions and account ids.

use proptest::prelude::*;

use crate::names::{AccountId, QueueName, Region};

prop_compose! {
    /// A valid queue name, standard or FIFO.
    pub fn queue_name()(base in "[A-Za-z0-9_-]{1,75}", fifo in any::<bool>()) -> QueueName {
        QueueName::new(&base, fifo).expect("the strategy only makes valid names")
    }
}

prop_compose! {
    /// A region of any partition, such as `eu-west-1`, `cn-north-1`, `us-gov-west-1` or
    /// `eusc-de-east-1`.
    pub fn region()(
        prefix in prop_oneof![
            "(us|eu|ap|sa|ca|me|af|il|mx)",
            Just("cn".to_owned()),
            Just("us-gov".to_owned()),
            Just("us-iso".to_owned()),
            Just("us-isob".to_owned()),
            Just("eu-isoe".to_owned()),
            Just("us-isof".to_owned()),
            Just("eusc-de".to_owned()),
        ],
        middle in "[a-z]{2,9}",
        number in 1u8..20,
    ) -> Region {
        Region::new(&format!("{prefix}-{middle}-{number}")).expect("the strategy only makes valid regions")
    }
}

prop_compose! {
    /// A 12-digit account id.
    pub fn account()(id in "[0-9]{12}") -> AccountId {
        AccountId::new(&id).expect("the strategy only makes valid ids")
    }
}
