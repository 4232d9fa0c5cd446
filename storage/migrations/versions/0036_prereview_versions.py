"""prereview versions: drafts' bytes move to the object store, one row per upload of a material
(a re-upload after 需修改 keeps the earlier draft and its comment), purged pre-reviews keep an
anonymised row (phone nullable, ``purged_at``)

Revision ID: 0036_prereview_versions
Revises: 0035_outbox_region_channels
"""

import io

import sqlalchemy as sa
from alembic import op

from storage.tables import UtcDateTime

revision = "0036_prereview_versions"
down_revision = "0035_outbox_region_channels"
branch_labels = None
depends_on = None


def _drafts_bucket() -> str:
    from core.settings import get_settings
    from storage.objects import bucket_for

    return bucket_for("drafts", None, prefix=get_settings().bucket_prefix, per_region=False)


def _media_type(head: bytes) -> str:
    for magic, kind in ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"II*\x00", "image/tiff"),
                        (b"MM\x00*", "image/tiff"), (b"%PDF-", "application/pdf")):
        if head.startswith(magic):
            return kind
    return "application/octet-stream"


def upgrade() -> None:
    with op.batch_alter_table("prereviews") as batch_op:
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=True)
        batch_op.add_column(sa.Column("purged_at", UtcDateTime(), nullable=True))
    with op.batch_alter_table("prereview_drafts") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("content_type", sa.String(length=40), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("size", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("bucket", sa.String(length=63), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("uploaded_at", UtcDateTime(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "select d.id, d.data, p.created_at from prereview_drafts d join prereviews p on p.id = d.prereview_id")).all()
    if rows:  # drafts stored in the database until now: their bytes go to the drafts bucket
        from storage.object_factory import get_store

        store, bucket = get_store(), _drafts_bucket()
        store.ensure_bucket(bucket)
        for did, data, created in rows:
            kind = _media_type(bytes(data[:8]))
            info = store.put(bucket, io.BytesIO(bytes(data)), kind, max_bytes=len(data) + 1)
            bind.execute(sa.text(
                "update prereview_drafts set content_type = :t, size = :n, bucket = :b, key = :k,"
                " uploaded_at = :at where id = :id"),
                {"t": kind, "n": info.size, "b": bucket, "k": info.key, "at": created, "id": did})
    with op.batch_alter_table("prereview_drafts") as batch_op:
        batch_op.drop_constraint("uq_prereview_draft", type_="unique")
        batch_op.create_unique_constraint("uq_prereview_draft", ["prereview_id", "material_id", "version"])
        batch_op.alter_column("uploaded_at", existing_type=UtcDateTime(), nullable=False)
        batch_op.alter_column("version", server_default=None)
        batch_op.alter_column("content_type", server_default=None)
        batch_op.alter_column("size", server_default=None)
        batch_op.alter_column("bucket", server_default=None)
        batch_op.drop_column("data")


def downgrade() -> None:
    """Back to one draft per material with its bytes in the row: the latest version of each, read
    from the store; earlier versions and purged drafts (no object) go."""
    bind = op.get_bind()
    bind.execute(sa.text(
        "delete from prereview_drafts where key is null or exists (select 1 from prereview_drafts n"
        " where n.prereview_id = prereview_drafts.prereview_id and n.material_id = prereview_drafts.material_id"
        " and n.version > prereview_drafts.version)"))
    with op.batch_alter_table("prereview_drafts") as batch_op:
        batch_op.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
    rows = bind.execute(sa.text("select id, bucket, key from prereview_drafts")).all()
    if rows:
        from storage.object_factory import get_store

        store = get_store()
        for did, bucket, key in rows:
            bind.execute(sa.text("update prereview_drafts set data = :d where id = :id"),
                         {"d": b"".join(store.get(bucket, key)), "id": did})
    bind.execute(sa.text("update prereviews set phone = '' where phone is null"))
    with op.batch_alter_table("prereview_drafts") as batch_op:
        batch_op.drop_constraint("uq_prereview_draft", type_="unique")
        batch_op.create_unique_constraint("uq_prereview_draft", ["prereview_id", "material_id"])
        batch_op.alter_column("data", existing_type=sa.LargeBinary(), nullable=False)
        for column in ("uploaded_at", "key", "bucket", "size", "content_type", "version"):
            batch_op.drop_column(column)
    with op.batch_alter_table("prereviews") as batch_op:
        batch_op.drop_column("purged_at")
        batch_op.alter_column("phone", existing_type=sa.String(length=20), nullable=False)
