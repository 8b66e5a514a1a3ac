"""A person's erasure reaches the audit trail too.

The audit trail is append-only for the application (migration 0001), yet its `changes` hold
what a person left: the address an invitation went to and the relay's refusal naming it
(`invitation.created`, `invitation.mail_refused`), an external approver's address and the
approver keys `email:...` (`content.decided`, `content.approvals_voided`,
`approval.reminder_sent`, `approval.expired`, workflow templates' `emails`), a client's billing
address, and the words of a decision (`content.decided`'s `comment`, the `reason` of
`content.changes_requested` and `content.rejected`). `erase_person_audit` rewrites those values
only, in the transaction's tenant only: action, actor, subject and time stay. It runs before
`erase_person_traces` (0017), while the person's decisions still hold their words, so it
knows which texts were theirs and on which content items. `erased_jsonb`, the rewrite of one
document, is also what the erasure applies to the outbox's payloads (a table the application may
update).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

from migrations.helpers import APP_ROLE

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCRUB_SIGNATURE = (
    "erased_jsonb(p_value jsonb, p_pattern text, p_new_email text, p_texts text[], p_text text)"
)
ERASE_SIGNATURE = (
    "erase_person_audit(p_tenant uuid, p_user uuid, p_email text, p_new_email text, p_text text)"
)


def upgrade() -> None:
    # Every string of the document, at any depth: the address replaced wherever it appears in
    # one (an approver key, a relay's message), a text of the person's replaced when it is the
    # whole string. Keys are the application's own names and stay. (plpgsql, not sql: a sql
    # function's body is checked when created, before it exists to call itself.)
    op.execute(
        f"""
        CREATE FUNCTION {SCRUB_SIGNATURE}
        RETURNS jsonb LANGUAGE plpgsql IMMUTABLE SET search_path = public AS $$
        BEGIN
          RETURN CASE jsonb_typeof(p_value)
            WHEN 'object' THEN (
              SELECT coalesce(jsonb_object_agg(
                       e.key, erased_jsonb(e.value, p_pattern, p_new_email, p_texts, p_text)),
                     '{{}}'::jsonb)
              FROM jsonb_each(p_value) e)
            WHEN 'array' THEN (
              SELECT coalesce(jsonb_agg(
                       erased_jsonb(e.value, p_pattern, p_new_email, p_texts, p_text)
                       ORDER BY e.ordinality),
                     '[]'::jsonb)
              FROM jsonb_array_elements(p_value) WITH ORDINALITY e(value, ordinality))
            WHEN 'string' THEN
              CASE WHEN p_value #>> '{{}}' = ANY (p_texts) THEN to_jsonb(p_text)
                   WHEN p_pattern IS NULL THEN p_value
                   ELSE to_jsonb(regexp_replace(p_value #>> '{{}}', p_pattern, p_new_email, 'gi'))
              END
            ELSE p_value
          END;
        END $$
        """  # noqa: S608 - SCRUB_SIGNATURE is a constant of this file
    )
    op.execute(
        f"""
        CREATE FUNCTION {ERASE_SIGNATURE}
        RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
          pattern text;
          n bigint;
        BEGIN
          IF p_tenant IS DISTINCT FROM
               NULLIF(current_setting('app.tenant_id', true), '')::uuid THEN
            RAISE EXCEPTION 'not the transaction''s tenant';
          END IF;
          -- The address as a whole, as a regular expression (NULL stays NULL): erasing
          -- ann@x.com leaves joann@x.com and ann@x.com.au alone; a full stop may end a sentence.
          pattern := '(?<![a-z0-9._%+-])'
            || regexp_replace(p_email, '([.*+?^${{}}()|\\[\\]\\\\])', '\\\\\\1', 'g')
            || '(?![a-z0-9_-]|\\.[a-z0-9])';
          WITH said AS (
            -- The same person as erase_person_traces' decisions: their words, by content item.
            SELECT d.content_item_id, array_agg(DISTINCT d.comment) AS texts
            FROM approval_decisions d
            WHERE d.tenant_id = p_tenant AND d.comment IS NOT NULL AND d.comment <> p_text
              AND ((p_user IS NOT NULL AND d.user_id = p_user)
                   OR (p_email IS NOT NULL
                       AND (lower(d.email) = p_email OR d.approver = 'email:' || p_email)))
            GROUP BY d.content_item_id
          ),
          rewritten AS (
            SELECT a.id, erased_jsonb(
                     a.changes, pattern, p_new_email,
                     coalesce(s.texts, ARRAY[]::text[]), p_text) AS changes
            FROM audit_events a
            LEFT JOIN said s ON a.subject_type = 'content_item' AND s.content_item_id = a.subject_id
            WHERE a.tenant_id = p_tenant
              AND (s.content_item_id IS NOT NULL
                   OR (p_email IS NOT NULL AND strpos(lower(a.changes::text), p_email) > 0))
          )
          UPDATE audit_events a SET changes = r.changes
          FROM rewritten r
          WHERE a.tenant_id = p_tenant AND a.id = r.id AND a.changes IS DISTINCT FROM r.changes;
          GET DIAGNOSTICS n = ROW_COUNT;
          RETURN n;
        END $$
        """  # noqa: S608 - ERASE_SIGNATURE is a constant of this file
    )
    op.execute(f"REVOKE ALL ON FUNCTION {ERASE_SIGNATURE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {ERASE_SIGNATURE} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {ERASE_SIGNATURE}")
    op.execute(f"DROP FUNCTION {SCRUB_SIGNATURE}")
