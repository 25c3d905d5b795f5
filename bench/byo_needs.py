"""The opening needs of bench/byo_data.py's dialogues: phrasings, the bot's offer, fee family."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Need:
    """An opening intent: how customers say it, the bot's offer, and its fee family."""

    name: str
    phrasings: tuple[str, ...]
    offer: str
    family: str


NEEDS: tuple[Need, ...] = (
    Need(
        "block_card",
        ("i lost my {card}", "my {card} was stolen {when}", "someone took my {card}"),
        "Sorry to hear that. Shall I block the card now?",
        "card",
    ),
    Need(
        "replace_card",
        ("my {card} is broken", "i need a new {card}", "the chip on my {card} stopped working"),
        "I can send you a replacement card. Shall I order it?",
        "card",
    ),
    Need(
        "activate_card",
        (
            "how do i activate my {card}",
            "my new {card} arrived {when}, activate it",
            "the {card} doesnt work yet",
        ),
        "I can activate the card for you. Want me to do it?",
        "card",
    ),
    Need(
        "raise_card_limit",
        (
            "can i spend more with my {card}",
            "my {card} limit is too low",
            "raise the limit on my {card}",
        ),
        "I can raise your card limit to 5,000. Shall I?",
        "card",
    ),
    Need(
        "refund",
        (
            "i want my money back for the {item}",
            "please refund the {item} i returned",
            "the {item} was broken, refund me",
        ),
        "I can refund that to your account. Shall I go ahead?",
        "refund",
    ),
    Need(
        "dispute_charge",
        (
            "i dont recognise a charge for {amount}",
            "there is a payment of {amount} i never made",
            "someone charged me {amount}",
        ),
        "I can open a dispute for that charge. Do you want me to?",
        "refund",
    ),
    Need(
        "cancel_order",
        (
            "cancel my order of the {item}",
            "i dont want the {item} anymore",
            "stop the {item} order",
        ),
        "I can cancel the order. Shall I do that?",
        "refund",
    ),
    Need(
        "send_transfer",
        (
            "send {amount} to my {person}",
            "i need to pay my {person} {amount}",
            "transfer {amount} to {person}",
        ),
        "I can send the transfer now. Shall I?",
        "transfer",
    ),
    Need(
        "cancel_transfer",
        (
            "stop the transfer to my {person}",
            "i sent {amount} to the wrong {person}",
            "cancel the payment of {amount}",
        ),
        "I can try to recall the transfer. Shall I try?",
        "transfer",
    ),
    Need(
        "international_transfer",
        (
            "send {amount} abroad to my {person}",
            "how do i pay my {person} in another country",
            "transfer {amount} in euros",
        ),
        "I can set up an international transfer. Want me to start it?",
        "transfer",
    ),
    Need(
        "standing_order",
        (
            "pay my {person} {amount} every month",
            "set up a monthly payment of {amount}",
            "i want a standing order for rent",
        ),
        "I can set up the monthly payment. Shall I?",
        "transfer",
    ),
    Need(
        "open_savings",
        (
            "i want to open a savings account",
            "can i save money with you",
            "start a savings pot for {item}",
        ),
        "I can open a savings account for you. Shall I?",
        "account",
    ),
    Need(
        "close_account",
        ("close my account", "i want to leave the bank", "delete my account {when}"),
        "I can close the account. Do you want me to go ahead?",
        "account",
    ),
    Need(
        "change_address",
        ("i moved house {when}", "update my address", "my address changed"),
        "I can update your address now. Shall I?",
        "account",
    ),
    Need(
        "statement",
        ("i need a statement for {when}", "send me my bank statement", "where is my statement"),
        "I can email you the statement. Want it?",
        "account",
    ),
    Need(
        "overdraft",
        (
            "can i get an overdraft",
            "i need an overdraft of {amount}",
            "my account is empty, i need credit",
        ),
        "I can offer an overdraft of 500. Shall I set it up?",
        "account",
    ),
)
