//! The one claim mechanism, the same contract on both adapters: the DynamoDB one
//! (against moto, through the real SDK) and the in-memory one the fast tests use.

use relay_app::memory::MemoryMessageLog;
use relay_aws::dynamo::DynamoMessageLog;
use relay_core::claim::{
    ClaimKey, ClaimOutcome, ClaimOwner, ClaimRequest, ExistingRecord, RecordKind, RecordState,
    StoredResponse,
};
use relay_core::ports::{ClaimStore, Finish, StoreError};
use relay_tests::AwsFixture;

const NOW: i64 = 1_800_000_000;

fn request<'a>(
    key: &'a ClaimKey,
    owner: &'a ClaimOwner,
    fingerprint: &'a str,
    now: i64,
) -> ClaimRequest<'a> {
    ClaimRequest {
        key,
        kind: RecordKind::Idempotency,
        owner,
        fingerprint: Some(fingerprint),
        now,
        lock_secs: 60,
        reclaims: None,
    }
}

fn taken(outcome: ClaimOutcome) -> ExistingRecord {
    match outcome {
        ClaimOutcome::Taken(existing) => existing,
        ClaimOutcome::Acquired => panic!("expected the key to be taken"),
    }
}

/// Every rule of the claim, in one run against `store`.
async fn claim_contract(store: &dyn ClaimStore) {
    let key = ClaimKey::inbound(
        &relay_core::ids::MessageSid::parse(&format!("SM{:032x}", rand::random::<u128>())).unwrap(),
    );
    let (first, second, third) = (
        ClaimOwner::random(),
        ClaimOwner::random(),
        ClaimOwner::random(),
    );

    // Exactly one holder; the others see its state and fingerprint.
    let claim = store
        .claim(&request(&key, &first, "fp-1", NOW))
        .await
        .unwrap();
    assert_eq!(claim, ClaimOutcome::Acquired);
    let seen = taken(
        store
            .claim(&request(&key, &second, "fp-2", NOW + 1))
            .await
            .unwrap(),
    );
    assert_eq!(seen.state, RecordState::InProgress);
    assert_eq!(seen.fingerprint.as_deref(), Some("fp-1"));
    assert_eq!(seen.response, None);

    // Only the holder may release it.
    store.release(&key, &second).await.unwrap();
    let still = taken(
        store
            .claim(&request(&key, &third, "fp-1", NOW + 2))
            .await
            .unwrap(),
    );
    assert_eq!(still.state, RecordState::InProgress);

    // Past its lock the claim is abandoned: another takes it over, and the stalled
    // first holder can neither finish nor release it any more.
    let claim = store
        .claim(&request(&key, &second, "fp-1", NOW + 61))
        .await
        .unwrap();
    assert_eq!(claim, ClaimOutcome::Acquired);
    let response = StoredResponse {
        status: 202,
        body: r#"{"message_sid":"SM1"}"#.into(),
    };
    let finish = Finish {
        state: RecordState::Answered,
        response: Some(&response),
        detail: None,
        expires_at: NOW + 86_400,
    };
    let late = store.finish(&key, &first, &finish).await;
    assert!(
        matches!(late, Err(StoreError::ClaimLost { .. })),
        "{late:?}"
    );
    store.release(&key, &first).await.unwrap();

    // The holder finishes it; everyone after gets the stored answer, even once the lock
    // would have lapsed.
    store.finish(&key, &second, &finish).await.unwrap();
    let done = taken(
        store
            .claim(&request(&key, &third, "fp-1", NOW + 500))
            .await
            .unwrap(),
    );
    assert_eq!(done.state, RecordState::Answered);
    assert_eq!(done.response.as_ref(), Some(&response));
    assert_eq!(done.fingerprint.as_deref(), Some("fp-1"));
    // A finished claim cannot be released or finished again.
    store.release(&key, &second).await.unwrap();
    assert!(store.finish(&key, &second, &finish).await.is_err());
    assert!(matches!(
        store
            .claim(&request(&key, &third, "fp-1", NOW + 501))
            .await
            .unwrap(),
        ClaimOutcome::Taken(_)
    ));

    // A released claim is free at once.
    let other = ClaimKey::inbound(
        &relay_core::ids::MessageSid::parse(&format!("SM{:032x}", rand::random::<u128>())).unwrap(),
    );
    assert_eq!(
        store
            .claim(&request(&other, &first, "x", NOW))
            .await
            .unwrap(),
        ClaimOutcome::Acquired
    );
    store.release(&other, &first).await.unwrap();
    assert_eq!(
        store
            .claim(&request(&other, &second, "x", NOW))
            .await
            .unwrap(),
        ClaimOutcome::Acquired
    );
}

/// A record left `undelivered` (a text that reached nobody) is taken over by any
/// claim, once; one left `outcome_unknown` only by a claim that reclaims it (an
/// operator's redelivery), once.
async fn takeover_contract(store: &dyn ClaimStore) {
    let fresh = || {
        ClaimKey::inbound(
            &relay_core::ids::MessageSid::parse(&format!("SM{:032x}", rand::random::<u128>()))
                .unwrap(),
        )
    };
    fn takeover(request: ClaimRequest<'_>, reclaim: Option<RecordState>) -> ClaimRequest<'_> {
        match reclaim {
            Some(state) => request.reclaiming(state),
            None => request,
        }
    }
    fn inbound<'a>(key: &'a ClaimKey, owner: &'a ClaimOwner) -> ClaimRequest<'a> {
        ClaimRequest::new(key, RecordKind::Inbound, owner, NOW)
    }
    for (left_in, reclaim) in [
        (RecordState::Undelivered, None),
        (
            RecordState::OutcomeUnknown,
            Some(RecordState::OutcomeUnknown),
        ),
    ] {
        let key = fresh();
        let (first, second, third) = (
            ClaimOwner::random(),
            ClaimOwner::random(),
            ClaimOwner::random(),
        );
        store.claim(&inbound(&key, &first)).await.unwrap();
        let finish = Finish {
            state: left_in,
            response: None,
            detail: Some("no tier could be reached"),
            expires_at: NOW + 86_400,
        };
        store.finish(&key, &first, &finish).await.unwrap();
        if reclaim.is_some() {
            // The webhook's retry of a text that may be out sends nothing.
            let seen = taken(store.claim(&inbound(&key, &second)).await.unwrap());
            assert_eq!(seen.state, left_in);
        }
        assert_eq!(
            store
                .claim(&takeover(inbound(&key, &second), reclaim))
                .await
                .unwrap(),
            ClaimOutcome::Acquired,
            "{left_in} is taken over"
        );
        // Once: the next sees it held.
        let seen = taken(
            store
                .claim(&takeover(inbound(&key, &third), reclaim))
                .await
                .unwrap(),
        );
        assert_eq!(seen.state, RecordState::InProgress, "{left_in}");
    }
}

#[tokio::test]
async fn the_dynamodb_claim_keeps_the_contract() {
    let aws = AwsFixture::create("claims").await;
    let store = DynamoMessageLog::new(aws.dynamodb.clone(), &aws.message_table);
    claim_contract(&store).await;
    takeover_contract(&store).await;
}

#[tokio::test]
async fn the_in_memory_claim_keeps_the_same_contract() {
    let store = MemoryMessageLog::default();
    claim_contract(&store).await;
    takeover_contract(&store).await;
}
