"""The rule engine: rule files in, decisions out. Pure over data — no HTTP, Celery or Redis.

    from automation import load_rules, evaluate, RuleSetError

    ruleset = load_rules(path)                  # RuleSet, or raises RuleSetError(.errors)
    ruleset.listens_to(event_name) -> bool      # the receiver's `202 ignored` test (cached look-up)
    ruleset.rules_for(event_name) -> tuple[Rule, ...]   # enabled rules, in load order
    ruleset.fetch_plan(envelope, *, snapshot=None) -> FetchPlan | None
        # the one GET to make first: .path, .params (("fields", "a,b"),), .fields, .missing
    evaluate(ruleset, envelope, item=None, *, snapshot=None, last_fired=None, channels=(), now=None)
        -> Evaluation
        # item: the fetched resource (None: the payload); snapshot: Evaluation.snapshot stored from
        # the last event of this item; last_fired: {rule_id: epoch seconds} for this item;
        # channels: Prepr's channel list [{id, slug?, name?/body?}] (None: leave refs unresolved,
        # for offline explain); now: epoch seconds, datetime or None (the clock).

    Evaluation: .event .resource .item_id .fired (rule ids: store their time for throttle)
                .snapshot (store per item for `changed`) .rules (RuleResult per rule considered:
                rule_id, status fired|not_matched|throttled|error|stopped, matched, condition
                tree, rendered values, errors, dry_run, stop) .plan (PlannedCall, ...) .to_json()
    PlannedCall: method, path, params (query pairs) | None, body, api "rest"|"tracking",
                queue "celery"|"bulk", rule_ids, kind put|bulk_put|bulk_delete|trigger_webhooks|
                track_event, dry_run, meta ({filter, max_items} for bulk); .to_json()
    apply_put(item, body) -> item as it is after the PUT (for re-planning and tests)

At most one PUT per item per event (kind "put", dry_run False); dry_run rules get their own PUT
marked dry_run=True, which the worker must not send.
"""
from .calls import FetchPlan, PlannedCall
from .draft import apply_put
from .errors import RuleError, RuleSetError
from .loader import load_rules
from .model import Rule, RuleSet
from .planner import Evaluation, RuleResult, evaluate, fetch_plan

__all__ = ["load_rules", "evaluate", "fetch_plan", "apply_put", "RuleSet", "Rule", "RuleError",
           "RuleSetError", "Evaluation", "RuleResult", "PlannedCall", "FetchPlan"]
