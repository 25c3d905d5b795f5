import pandas as pd

from models.examples import labelled_customer_turns


def test_latest_label_wins_and_agent_labels_override_seed():
    ts = pd.to_datetime
    conversations = pd.DataFrame(
        {
            "message_id": ["a", "b", "c", "d", "e"],
            "speaker": ["customer", "customer", "customer", "bot", "customer"],
            "text": ["Where is my card", "where is my  CARD", "Top up failed", "Hi!", "Unlabelled"],
            "intent": ["card_arrival", "card_delivery_estimate", "top_up_failed", "greet", None],
            "label_source": ["seed", "agent", "seed", "seed", "none"],
            "ts": [pd.NaT, ts("2026-11-02", utc=True), pd.NaT, pd.NaT, pd.NaT],
            "context": ["{}"] * 5,
        }
    )
    examples = labelled_customer_turns(conversations)
    assert dict(zip(examples["message_id"], examples["intent"], strict=True)) == {
        "b": "card_delivery_estimate",
        "c": "top_up_failed",
    }
