"""A hand-made landing day holding one clean record and one record of every broken kind per file.

`EXPECTED_REJECTS` lists (landing file, line number, reason) for every line that must be rejected.
"""

import json
from datetime import date
from pathlib import Path

DAY = date(2026, 10, 1)
TS = "2026-10-01T10:00:00.000Z"
LATER = "2026-10-01T10:05:00.000Z"

EMAIL = "jane.doe@example.com"
PHONE = "+44 20 7946 0958"
FIRST_NAME, LAST_NAME = "Janeth", "Doemerton"
IP = "203.0.113.77"
OVER_TEXT_CAP = "x" * 2001  # one character over the dbt var max_text_chars


def _web(event_id, ts=TS, **overrides):
    record = {
        "event_id": event_id, "ts": ts, "session_id": "sess-1", "cookie_id": "ck-aaa", "customer_id": "C000001",
        "event_type": "page_view", "url": "/c/tennis_gear/racket", "item_id": "I00001", "category": "tennis_gear",
        "title": "Wilson Pro Staff racket", "query": None, "ip": IP, "user_agent": "Mozilla/5.0 Chrome/120.0",
    }
    record.update(overrides)
    return json.dumps(record)


def _social(engagement_id, ts=TS, **overrides):
    record = {"engagement_id": engagement_id, "ts": ts, "handle": "@jane_tennis", "action": "like",
              "post_id": "P00001", "text": "What a final", "tags": ["tennis"]}
    record.update(overrides)
    return json.dumps(record)


WEB_LINES = [
    _web("w-1"),                                             # 1 clean
    _web("w-2")[:40],                                        # 2 bad_json
    _web("w-3", cookie_id=""),                               # 3 missing_id
    _web("w-4", ts="yesterday noon"),                        # 4 unparseable_timestamp
    _web("w-5", ts="2099-01-01T00:00:00.000Z"),              # 5 future_timestamp
    _web("w-6", ts="2026-09-28T10:00:00.000Z"),              # 6 timestamp_outside_partition
    _web("w-1"),                                             # 7 duplicate
    _web("w-8", event_type="teleport"),                      # 8 unknown_action
    "",                                                      # 9 blank line
    _web("w-10", event_type="search", item_id=None, category=None, title=None, query="wimbledon tickets", ts=LATER),
]
SOCIAL_LINES = [
    _social("s-1", text=f"write me at {EMAIL}", action="comment"),   # 1 clean, PII masked in staging
    _social("s-2", action="poke"),                                   # 2 unknown_action
    _social("s-3", handle=None),                                     # 3 missing_id
    _social("s-4", text=OVER_TEXT_CAP),                              # 4 oversized text field
]
CUSTOMERS = (
    "customer_id,email,phone,first_name,last_name,region,age_band,social_handle,updated_at\n"
    f"C000001,{EMAIL},{PHONE},{FIRST_NAME},{LAST_NAME},north,25-34,@jane_tennis,{TS}\n"   # 2 clean
    f"C000002,other@example.com,+44 20 7946 0000,Bob,Smith,south,35-44,,{TS},extra\n"    # 3 malformed (extra field)
)
ORDERS = (
    "order_id,customer_id,ts,item_id,category,title,quantity,amount,currency\n"
    f"o-1,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,1,199.00,EUR\n"   # 2 clean
    f"o-2,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,two,199.00,EUR\n"   # 3 wrong_type
    f"o-3,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,1,-5.00,EUR\n"    # 4 negative_amount
    f"o-4,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,1.5,199.00,EUR\n"  # 5 wrong_type, not 2
    f"o-5,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,1,1e3,EUR\n"      # 6 invalid_amount, not 1000
    f"o-6,C000001,{LATER},I00001,tennis_gear,Wilson Pro Staff racket,1,10.12345,EUR\n"  # 7 invalid_amount, not 10.12
)
TICKETS = (
    "ticket_id,customer_id,ts,channel,subject,body\n"
    f"t-1,C000001,{LATER},email,Racket string broke,\"Please call me, {PHONE}\"\n"     # 2 clean
)
DEVICES = (
    "device_id,customer_id,device_type,registered_at\n"
    f"d-1,C000001,wearable,{TS}\n"                                                     # 2 clean
)
READINGS_HEAD = "reading_id,device_id,ts,device_type,signal,value,context,lat,lon\n"
READINGS_BODY = [
    f"r-1,d-1,{LATER},wearable,activity_minutes,42.0,tennis session,51.4343,-0.2146",   # 2 clean
    f"r-2,d-1,{LATER},wearable,activity_minutes,high,tennis session,51.4343,-0.2146",   # 3 wrong_type
    f"r-3,d-1,{LATER},wearable,heart_rate_bpm,NaN,tennis session,51.4343,-0.2146",      # 4 not_a_number
    f"r-4,d-1,{LATER},wearable,activity_minutes,inf,tennis session,51.4343,-0.2146",    # 5 out_of_range
    f"r-5,d-1,{LATER},wearable,heart_rate_bpm,900,tennis session,51.4343,-0.2146",      # 6 out_of_range
    f"r-6,d-1,{LATER},wearable,heart_rate_bpm,72,tennis session,95.0,-0.2146",          # 7 out_of_range
    f"r-7,d-1,{LATER},wearable,heart_rate_bpm,72,tennis session,nan,-0.2146",           # 8 not_a_number
]

EXPECTED_REJECTS = {
    ("landing/web/events/2026-10-01.jsonl", 2, "malformed_record"),
    ("landing/web/events/2026-10-01.jsonl", 3, "missing_id"),
    ("landing/web/events/2026-10-01.jsonl", 4, "unparseable_timestamp"),
    ("landing/web/events/2026-10-01.jsonl", 5, "future_timestamp"),
    ("landing/web/events/2026-10-01.jsonl", 6, "timestamp_outside_partition"),
    ("landing/web/events/2026-10-01.jsonl", 7, "duplicate"),
    ("landing/web/events/2026-10-01.jsonl", 8, "unknown_action"),
    ("landing/web/events/2026-10-01.jsonl", 9, "malformed_record"),
    ("landing/web/events/2026-10-01.jsonl", 11, "bad_encoding"),
    ("landing/social/engagements/2026-10-01.jsonl", 2, "unknown_action"),
    ("landing/social/engagements/2026-10-01.jsonl", 3, "missing_id"),
    ("landing/crm/customers/2026-10-01.csv", 3, "malformed_record"),
    ("landing/crm/orders/2026-10-01.csv", 3, "wrong_type"),
    ("landing/crm/orders/2026-10-01.csv", 4, "negative_amount"),
    ("landing/iot/readings/2026-10-01.csv", 3, "wrong_type"),
    ("landing/social/engagements/2026-10-01.jsonl", 4, "oversized"),
    ("landing/crm/orders/2026-10-01.csv", 5, "wrong_type"),
    ("landing/crm/orders/2026-10-01.csv", 6, "invalid_amount"),
    ("landing/crm/orders/2026-10-01.csv", 7, "invalid_amount"),
    ("landing/iot/readings/2026-10-01.csv", 4, "not_a_number"),
    ("landing/iot/readings/2026-10-01.csv", 5, "out_of_range"),
    ("landing/iot/readings/2026-10-01.csv", 6, "out_of_range"),
    ("landing/iot/readings/2026-10-01.csv", 7, "out_of_range"),
    ("landing/iot/readings/2026-10-01.csv", 8, "not_a_number"),
}
RAW_LINES = {"web": 11, "social": 4, "customers": 2, "orders": 6, "tickets": 1, "devices": 1, "readings": 7}


def write_crafted_day(home: Path) -> None:
    landing = home / "landing"

    def write(relative: str, data: bytes) -> None:
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    day = DAY.isoformat()
    bad_encoding_line = _web("w-11").replace("Wilson", "Wil\udcffson").encode("utf-8", "surrogateescape")
    write(f"web/events/{day}.jsonl", ("\n".join(WEB_LINES) + "\n").encode() + bad_encoding_line + b"\n")
    write(f"social/engagements/{day}.jsonl", ("\n".join(SOCIAL_LINES) + "\n").encode())
    write(f"crm/customers/{day}.csv", CUSTOMERS.encode())
    write(f"crm/orders/{day}.csv", ORDERS.encode())
    write(f"crm/tickets/{day}.csv", TICKETS.encode())
    write(f"iot/devices/{day}.csv", DEVICES.encode())
    write(f"iot/readings/{day}.csv", (READINGS_HEAD + "\n".join(READINGS_BODY) + "\n").encode())
