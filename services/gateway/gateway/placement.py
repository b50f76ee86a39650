"""Collections placed on several indexers by their id.

A collection's id names its owner: its first byte (two hex characters) is the
owner's ordinal in INDEXER_ADDRESSES, the order of a Kubernetes StatefulSet
(indexer-0, indexer-1...). The placement of a collection therefore never
changes: scaling the StatefulSet out puts new collections on the new
indexers and moves nothing. New collections go to a random indexer.

A person may belong to collections on several indexers. It is stored in full
on its home (the owner of its first collection when created) and as a replica,
with the memberships it has there, on every other owner; each owner's shards
need the faces. Reads of persons ask every indexer and merge. Writes that span
indexers are not one transaction: each indexer's part is durable before the
answer, a failed create is undone, and a failed update is repaired by
repeating it.

With one indexer every call goes straight through: no fan-out, no merging.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Iterable

import grpc
import numpy as np
import numpy.typing as npt

from facesearch.indexer.v1 import indexer_pb2 as pb

from .errors import ApiError, unknown_collection, unknown_person
from .indexer_client import Found, IndexerClient

MAX_INDEXERS = 256  # one byte of the id


def created_order(record: pb.Record) -> tuple[str, str]:
    return json.loads(record.data).get("create_date", ""), record.id


def faces_of(record: pb.Record) -> list[tuple[str, npt.NDArray[np.float32]]]:
    return [(f.face_id, np.frombuffer(f.vector, "<f4")) for f in record.faces]


class Indexers:
    """The indexers as one catalog and one search, following the placement."""

    def __init__(self, clients: list[IndexerClient]):
        if not 1 <= len(clients) <= MAX_INDEXERS:
            raise ValueError(f"between 1 and {MAX_INDEXERS} indexers, got {len(clients)}")
        self.clients = clients

    @classmethod
    def connect(cls, addresses: Iterable[str], timeout_s: float) -> Indexers:
        return cls([IndexerClient(a, timeout_s) for a in addresses])

    @property
    def single(self) -> bool:
        return len(self.clients) == 1

    def new_collection_id(self) -> str:
        return f"{secrets.randbelow(len(self.clients)):02x}{secrets.token_hex(11)}"

    def ordinal(self, collection_id: str) -> int:
        try:
            ordinal = int(collection_id[:2], 16)
        except ValueError:
            raise unknown_collection(collection_id) from None
        if ordinal >= len(self.clients):
            raise unknown_collection(collection_id)
        return ordinal

    def owner(self, collection_id: str) -> IndexerClient:
        return self.clients[self.ordinal(collection_id)]

    def by_owner(self, collection_ids: Iterable[str]) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {}
        for c in collection_ids:
            groups.setdefault(self.ordinal(c), []).append(c)
        return groups

    async def ready(self) -> bool:
        return all(await asyncio.gather(*(c.ready() for c in self.clients)))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.clients), return_exceptions=True)

    # Collections.

    async def put_collection(self, tenant: str, id: str, name: str, data: bytes, update: bool) -> None:
        owner = self.ordinal(id)
        # Names are unique per tenant: the owner checks its own atomically,
        # the other indexers are asked first.
        others = [c for i, c in enumerate(self.clients) if i != owner]
        for found in await asyncio.gather(*(c.list_collections(tenant, 0, 1, name=name) for c in others)):
            if found.records:
                raise ApiError(
                    grpc.StatusCode.ALREADY_EXISTS,
                    "collection_exists",
                    f"a collection named {name[:64]!r} already exists (id {found.records[0].id})",
                )
        await self.clients[owner].put_collection(tenant, id, name, data, update)

    async def get_collections(self, tenant: str, ids: list[str]) -> list[pb.Record]:
        groups: dict[int, list[str]] = {}
        for c in ids:
            try:
                groups.setdefault(self.ordinal(c), []).append(c)
            except ApiError:
                continue  # names no indexer: it does not exist
        answers = await asyncio.gather(*(self.clients[o].get_collections(tenant, g) for o, g in groups.items()))
        found = {r.id: r for records in answers for r in records}
        return [found[i] for i in ids if i in found]

    async def list_collections(self, tenant: str, offset: int, limit: int) -> pb.Records:
        if self.single:
            return await self.clients[0].list_collections(tenant, offset, limit)
        return self._merged_page(
            await asyncio.gather(*(c.list_collections(tenant, 0, offset + limit) for c in self.clients)), offset, limit
        )

    async def delete_collection(self, tenant: str, id: str) -> int:
        return await self.owner(id).delete_collection(tenant, id)

    # Persons.

    async def get_persons(self, tenant: str, ids: list[str], with_faces: bool = False) -> list[pb.Record]:
        if self.single or not ids:
            return await self.clients[0].get_persons(tenant, ids, with_faces)
        held = await asyncio.gather(*(c.get_persons(tenant, ids, with_faces) for c in self.clients))
        merged: dict[str, pb.Record] = {}
        # The home's record first (it is never a replica), then the
        # memberships each replica adds.
        for r in sorted((r for records in held for r in records), key=lambda r: r.replica):
            if r.id not in merged:
                merged[r.id] = pb.Record(id=r.id, data=r.data, collections=r.collections, faces=r.faces)
            else:
                merged[r.id].collections.extend(c for c in r.collections if c not in merged[r.id].collections)
        return [merged[i] for i in ids if i in merged]

    async def list_persons(self, tenant: str, offset: int, limit: int, collection: str) -> pb.Records:
        if self.single:
            return await self.clients[0].list_persons(tenant, offset, limit, collection)
        if collection:
            page = await self.owner(collection).list_persons(tenant, offset, limit, collection)
        else:
            page = self._merged_page(
                await asyncio.gather(*(c.list_persons(tenant, 0, offset + limit, "") for c in self.clients)),
                offset,
                limit,
            )
        # Each indexer knows only its own memberships: complete them.
        complete = await self.get_persons(tenant, [r.id for r in page.records])
        return pb.Records(records=complete, total=page.total)

    async def put_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        update: bool,
        faces: list[tuple[str, npt.NDArray[np.float32]]] | None = None,
        collections: list[str] | None = None,
    ) -> None:
        if self.single:
            return await self.clients[0].put_person(tenant, id, data, update, faces, collections)
        groups = self.by_owner(collections) if collections is not None else None
        if groups is not None:
            await self._all_exist(tenant, groups)
        if not update:
            # Persons.create always names the new person's collections.
            assert collections is not None and groups is not None
            await self._create_person(tenant, id, data, faces, collections, groups)
        else:
            await self._update_person(tenant, id, data, faces, groups)

    async def _all_exist(self, tenant: str, groups: dict[int, list[str]]) -> None:
        """Refuses unknown collections before any indexer is written."""
        for wanted, found in zip(
            groups.values(),
            await asyncio.gather(*(self.clients[o].get_collections(tenant, g) for o, g in groups.items())),
            strict=True,
        ):
            missing = [c for c in wanted if c not in {r.id for r in found}]
            if missing:
                raise unknown_collection(missing[0])

    async def _create_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        faces: list[tuple[str, npt.NDArray[np.float32]]] | None,
        collections: list[str],
        groups: dict[int, list[str]],
    ) -> None:
        home = self.ordinal(collections[0])
        await self.clients[home].put_person(tenant, id, data, False, faces, groups[home])
        replicas = [o for o in groups if o != home]
        try:
            await asyncio.gather(
                *(self.clients[o].put_person(tenant, id, data, False, faces, groups[o], replica=True) for o in replicas)
            )
        except BaseException:
            # Not acknowledged, so not kept: undo what was written.
            await asyncio.gather(
                *(self.clients[o].delete_person(tenant, id) for o in (home, *replicas)), return_exceptions=True
            )
            raise

    async def _update_person(
        self,
        tenant: str,
        id: str,
        data: bytes,
        faces: list[tuple[str, npt.NDArray[np.float32]]] | None,
        groups: dict[int, list[str]] | None,
    ) -> None:
        held = await asyncio.gather(*(c.get_persons(tenant, [id], with_faces=faces is None) for c in self.clients))
        holders = {o: records[0] for o, records in enumerate(held) if records}
        home = next((o for o, r in holders.items() if not r.replica), None)
        if home is None:
            raise unknown_person(id)
        await self.clients[home].put_person(
            tenant, id, data, True, faces, groups.get(home, []) if groups is not None else None
        )
        writes: list[Awaitable[object]] = []
        for o in groups if groups is not None else holders:
            if o == home:
                continue
            # A new owner needs the faces; the home has them.
            replica_faces = faces if faces is not None or o in holders else faces_of(holders[home])
            writes.append(
                self.clients[o].put_person(
                    tenant, id, data, True, replica_faces, groups[o] if groups is not None else None, replica=True
                )
            )
        if groups is not None:
            writes += [self.clients[o].delete_person(tenant, id) for o in holders if o != home and o not in groups]
        await asyncio.gather(*writes)

    async def delete_person(self, tenant: str, id: str, collection: str = "") -> int:
        if self.single:
            return await self.clients[0].delete_person(tenant, id, collection)
        if collection:  # the replica there goes with its last membership
            return await self.owner(collection).delete_person(tenant, id, collection)
        answers = await asyncio.gather(*(c.delete_person(tenant, id) for c in self.clients), return_exceptions=True)
        removed = [a for a in answers if not isinstance(a, BaseException)]
        failed = [
            a
            for a in answers
            if isinstance(a, BaseException) and not (isinstance(a, ApiError) and a.code == grpc.StatusCode.NOT_FOUND)
        ]
        if failed:
            raise failed[0]
        if not removed:
            raise unknown_person(id)
        return sum(removed)

    # Search.

    async def search(
        self,
        tenant: str,
        collections: list[str],
        query: npt.NDArray[np.float32],
        top_k: int,
        min_cosine: float,
        mode: pb.Mode,
    ) -> Found:
        if self.single:
            return await self.clients[0].search(tenant, collections, query, top_k, min_cosine, mode)
        targets = self.by_owner(collections) if collections else {o: [] for o in range(len(self.clients))}
        answers = await asyncio.gather(
            *(self.clients[o].search(tenant, c, query, top_k, min_cosine, mode) for o, c in targets.items())
        )
        best: dict[str, pb.Hit] = {}
        for hit in sorted((h for a in answers for h in a.hits), key=lambda h: (-h.cosine, h.person_id)):
            best.setdefault(hit.person_id, hit)  # a person replicated on two owners counts once
        return Found(list(best.values())[:top_k], sum(a.faces for a in answers))

    @staticmethod
    def _merged_page(pages: list[pb.Records], offset: int, limit: int) -> pb.Records:
        """One page, in creation order, from each indexer's first offset+limit."""
        records = sorted((r for p in pages for r in p.records), key=created_order)
        return pb.Records(records=records[offset : offset + limit], total=sum(p.total for p in pages))
