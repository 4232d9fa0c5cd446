"""Choose the object store from settings: ``local`` (a folder, the default) or ``s3``."""

from __future__ import annotations

from functools import lru_cache

from core.settings import Settings, get_settings
from storage.object_local import LocalStore
from storage.object_s3 import S3Store
from storage.objects import ObjectStore


def make_store(s: Settings) -> ObjectStore:
    if s.object_store == "s3":
        return S3Store(s.s3_endpoint, s.s3_access_key, s.s3_secret_key.get_secret_value(),
                       secure=s.s3_secure, region=s.s3_region,
                       retention_mode=s.evidence_retention_mode)
    return LocalStore(s.object_dir, retention_mode=s.evidence_retention_mode)


@lru_cache
def get_store() -> ObjectStore:
    return make_store(get_settings())
