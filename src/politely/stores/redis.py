"""The Redis store: `redis://host:port/db` and `redis+cluster://host:port`.

Keys (every visitor key under one hash tag, so a Cluster keeps a visitor on
one slot; the site's keys under the site's tag). Site and visitor names are
percent-escaped inside the tags (`%`, `:`, `{`, `}`), so no two (site,
visitor) pairs share a key and a name never ends a tag early:

- `politely:{site:visitor}`: a hash with `v` (version), `x` (expiry on the
  engine's clock), `p` (profile), `h` (history, `politely.codec`'s layout),
  `s` (remembered event ids, in order) and `e:<id>` (`<at>\\n<decision>`).
- `politely:{site}:sitewide`: a sorted set of invitation ids scored by time.
- `politely:{site}:blocks` (hash), `politely:{site}:agents` (string),
  `politely:{site}:stats` (hash of JSON-encoded counts).

`commit` is one Lua script (`lua/commit.lua`, EVALSHA): the version check,
the caps, the recording, the remembered id, the profile, the version bump and
the TTL. A claim with sitewide caps first reserves its sitewide slot
(`lua/reserve.lua`) and gives it back if the visitor's commit then refuses or
conflicts: a crash in between costs a sitewide slot, never an extra
invitation. On a Cluster the stats hash is on the site's slot: the expected
outcome's counts go out in the same step as the commit (another node, sent
before either reply is read) and are corrected only if the commit answers
otherwise. `docs/stores.md` says more: timeouts, the circuit breaker, what an
outage costs.

redis-py is imported only when a Redis URL is opened; it is the `redis` extra.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from politely.caps import Cap
from politely.errors import StoreError
from politely.state import AgentStatus, Block, Count, SitewideUsage
from politely.stores.base import Loaded, Outcome, Write

TIMEOUT = 0.1  # seconds: connect and socket timeouts, unless the URL says otherwise
BREAKER = 1.0  # seconds: after a failure, fail fast this long before trying again

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.decode
_OUTCOMES = {
    b"applied": Outcome.APPLIED,
    b"refused": Outcome.REFUSED,
    b"conflict": Outcome.CONFLICT,
}


def _script(name: str) -> str:
    return resources.files("politely.stores").joinpath(f"lua/{name}.lua").read_text("utf-8")


def _n(x: float) -> str:
    """A number as Redis and Lua read it back exactly."""
    return "inf" if x == math.inf else repr(float(x))


def _field(count: Count) -> str:
    return json.dumps(list(count), separators=(",", ":"))


_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D"})


def _name(name: str) -> str:
    """A site or visitor name with no `:`, `{` or `}` left (percent-escaped, `%` too):
    one-to-one, and the same as the name for every name without those four."""
    return name.translate(_ESCAPES)


def visitor_key(site: str, visitor: str) -> str:
    """`politely:{site:visitor}`, names escaped: the one `:` in the tag separates them,
    and the tag ends at the `}` the key puts there."""
    return f"politely:{{{_name(site)}:{_name(visitor)}}}"


def site_key(site: str, what: str) -> str:
    """`politely:{site}:what`: no `:` inside the tag, so never a visitor's key."""
    return f"politely:{{{_name(site)}}}:{what}"


class RedisStore:
    """A store on a Redis server or Cluster, through a redis-py client.

    `connect` builds the client (lazily: opening never needs the server up).
    Every redis error is raised as StoreError from the original; after a
    connection failure or timeout the store fails fast for `breaker` seconds
    (no network attempt), then lets one caller probe while the others keep
    failing fast, so a dead Redis costs one timeout a second, not one a
    request, and never a burst of them when the pause ends.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        cluster: bool,
        breaker: float = BREAKER,
        clock: Callable[[], float] = time.monotonic,
        name: str = "redis",
    ) -> None:
        self._connect = connect
        self.cluster = cluster
        self.breaker = breaker
        self._clock = clock
        self._name = name
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._breaker_lock = threading.Lock()
        self._open_until = 0.0  # the breaker is open (failing fast) until then
        self._failure: str | None = None  # why it tripped; None: closed
        self._probing = False  # half-open: one caller is trying the server
        self.failures = 0  # calls that reached the network and failed
        # sequential steps that reached the network: a step is one or more sends issued
        # before any reply is awaited (a pipeline, even to several Cluster nodes, is one)
        self.round_trips = 0

    def __repr__(self) -> str:
        return f"RedisStore({self._name!r})"

    # --- the connection, the breaker -------------------------------------------------------

    def client(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    made = self._connect()
                    # the scripts before the client: a thread that finds the client
                    # (without the lock) finds its scripts too
                    self._scripts = {
                        name: made.register_script(_script(name)) for name in ("commit", "reserve")
                    }
                    self._client = made
                client = self._client
        return client

    @property
    def breaker_open(self) -> bool:
        """A call now would fail fast: in the pause, or while another caller probes."""
        return self._failure is not None and (self._clock() < self._open_until or self._probing)

    @contextmanager
    def _io(self, what: str) -> Iterator[None]:
        """One step on the network, through the breaker.

        Closed: every call goes. After a connection failure or timeout it opens:
        calls fail fast for `breaker` seconds. Then it is half-open: exactly one
        caller probes the server while the others keep failing fast; the probe's
        success (or any answer from the server) closes it, its failure opens it
        for another pause.
        """
        import redis
        from redis.exceptions import RedisClusterException

        probe = False
        if self._failure is not None:
            with self._breaker_lock:
                if self._failure is not None:
                    if self._clock() < self._open_until or self._probing:
                        raise StoreError(
                            f"{self._name} unavailable ({what} not tried): {self._failure}"
                        )
                    self._probing = probe = True
        self.round_trips += 1
        try:
            yield
        except (redis.RedisError, RedisClusterException) as error:
            self.failures += 1
            if _trips(error):
                with self._breaker_lock:
                    self._failure = f"{type(error).__name__}: {error}"
                    self._open_until = self._clock() + self.breaker
            elif probe:  # the server answered: it is back
                self._close_breaker()
            raise StoreError(f"{self._name} {what} failed: {error}") from error
        else:
            if probe:
                self._close_breaker()
        finally:
            if probe:  # also when the probe died of something else: the next caller probes
                self._probing = False

    def _close_breaker(self) -> None:
        with self._breaker_lock:
            self._failure = None
            self._open_until = 0.0

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        self.client()
        return self._scripts[name](keys=keys, args=args)

    # --- the protocol ----------------------------------------------------------------------

    def load(
        self,
        site: str,
        visitor: str,
        now: float,
        *,
        event_id: str | None = None,
        sitewide: Sequence[Cap] = (),
    ) -> Loaded:
        fields = ["v", "x", "p", "h"]
        if event_id is not None:
            fields.append(f"e:{event_id}")
        sw = site_key(site, "sitewide")
        with self._io("load"):
            pipe = self.client().pipeline(transaction=False)
            pipe.hmget(visitor_key(site, visitor), fields)
            pipe.hget(site_key(site, "blocks"), visitor)
            pipe.get(site_key(site, "agents"))
            for cap in sitewide:
                assert isinstance(cap.window, int)
                low, high = f"({_n(now - cap.window)}", _n(now)
                pipe.zcount(sw, low, high)
                # the (limit - 1)-th and the limit-th newest in the window, in one command:
                # when the cap releases after one more invitation, and now (caps.sitewide_usage)
                start = max(cap.limit - 2, 0)
                pipe.zrevrangebyscore(
                    sw, high, low, start=start, num=cap.limit - start, withscores=True
                )
            results = pipe.execute()
        (version, expires, profile, history, *seen), block, agents = results[:3]
        usage = []
        rest = iter(results[3:])
        for cap in sitewide:
            window = cap.window
            assert isinstance(window, int)
            count = int(next(rest))
            newest = next(rest)  # [(limit - 1)-th, limit-th], or [limit-th] when limit is 1
            release = now if count < cap.limit else newest[-1][1] + window
            if count + 1 < cap.limit:
                after_one = now
            elif cap.limit == 1:
                after_one = now + window
            else:
                after_one = newest[0][1] + window
            usage.append(SitewideUsage(min(count, cap.limit), release, after_one))
        active = _block(block) if block is not None else None
        if active is not None and not active.active(now):
            active = None
        status = AgentStatus(*_decode(agents)) if agents is not None else None
        if version is None or (expires is not None and float(expires) <= now):
            return Loaded(0, None, None, active, status, tuple(usage), None)
        replay = None
        if seen and seen[0] is not None:
            at, decision = seen[0].split(b"\n", 1)
            replay = (float(at), decision)
        return Loaded(int(version), profile, history, active, status, tuple(usage), replay)

    def commit(self, site: str, visitor: str, write: Write) -> Outcome:
        claim = write.claim
        sw = site_key(site, "sitewide")
        reserved = ""
        claim_arg = b""
        refused = False  # the sitewide reservation failed: the claim is refused outright
        if claim is not None:
            r = claim.record
            if claim.sitewide:
                args: list[Any] = [_n(write.at), r.id, _n(claim.keep_sitewide_for)]
                for cap in claim.sitewide:
                    args += [cap.limit, cap.window]
                with self._io("reserve"):
                    refused = not self._run("reserve", [sw], args)
                reserved = "" if refused else r.id
            caps = [[c.limit, c.window, c.rule] for c in claim.caps]
            claim_arg = _encode(
                [r.id, r.at, r.rule, r.variant, r.session, claim.keep_for, caps, refused]
            )
        entry = write.remember
        remember_arg = b""
        if entry is not None:
            remember_arg = _encode(
                [entry.event_id, entry.keep_for, entry.keep_at_most, entry.refused is not None]
            )
        keys = [visitor_key(site, visitor)]
        if not self.cluster:  # one server: the stats and the give-back in the same script
            keys += [site_key(site, "stats"), sw]
        args = [
            write.version,
            _n(write.at),
            _n(write.keep_for),
            "0" if write.profile is None else "1",
            write.profile or b"",
            claim_arg,
            remember_arg,
            entry.decision if entry is not None else b"",
            (entry.refused or b"") if entry is not None else b"",
            _encode([_field(c) for c in write.counts]),
            _encode([_field(c) for c in write.refused_counts]),
            reserved,
        ]
        if not self.cluster:
            with self._io("commit"):
                return _OUTCOMES[self._run("commit", keys, args)]
        return self._commit_on_cluster(site, write, keys, args, reserved, refused)

    def _commit_on_cluster(
        self,
        site: str,
        write: Write,
        keys: list[str],
        args: list[Any],
        reserved: str,
        refused: bool,
    ) -> Outcome:
        """The visitor's script and the expected outcome's statistics in one step.

        The stats hash is on the site's slot, so no script can hold both; the
        commit script (the visitor's node) and `HINCRBY`s of the counts it will
        most likely answer with (the site's node) go out together in one cluster
        pipeline: one step. Only when the answer differs (a visitor cap refused,
        a conflict) does a second step correct the counts and give the reserved
        sitewide slot back. A crash in between costs a statistic, never an
        invitation.
        """
        from redis.exceptions import AskError, MovedError, NoScriptError, TryAgainError

        not_run = (NoScriptError, MovedError, AskError, TryAgainError)
        stats = site_key(site, "stats")
        expected = write.refused_counts if refused else write.counts
        with self._io("commit"):
            client = self.client()
            script = self._scripts["commit"]
            pipe = client.pipeline()
            # ClusterPipeline blocks its evalsha() method, and would ask a node for
            # the command's keys (COMMAND GETKEYS: a step of its own) unless told
            # the node; a stale slot map answers MOVED, and the script runs alone
            node = client.get_node_from_key(keys[0])
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args, target_nodes=node)
            for c in expected:
                pipe.hincrby(stats, _field(c), 1)
            answer, *counted = _send(pipe)
            if isinstance(answer, Exception) and not isinstance(answer, not_run):
                raise answer
        # a count whose command was redirected was not added; any other error:
        # perhaps added (a timeout), so never added twice
        added = Counter(
            c for c, r in zip(expected, counted, strict=True) if not isinstance(r, not_run)
        )
        if isinstance(answer, Exception):  # NOSCRIPT or a redirection: it did not run
            with self._io("commit"):  # one step: EVAL the source (which also caches it there)
                answer = client.eval(script.script, len(keys), *keys, *args)
        outcome = _OUTCOMES[answer]
        wanted = Counter(
            () if outcome is Outcome.CONFLICT
            else write.refused_counts if outcome is Outcome.REFUSED
            else write.counts
        )  # fmt: skip
        correction = {c: wanted[c] - added[c] for c in wanted | added if wanted[c] != added[c]}
        give_back = reserved and outcome is not Outcome.APPLIED
        if correction or give_back:
            try:
                with self._io("commit (correction)"):
                    pipe = client.pipeline()
                    for c, n in correction.items():
                        pipe.hincrby(stats, _field(c), n)
                    if give_back:
                        pipe.zrem(site_key(site, "sitewide"), reserved)
                    pipe.execute()
            except StoreError:
                pass  # the outcome stands: a statistic (or a sitewide slot) is lost
        return outcome

    def count(self, site: str, counts: Iterable[Count]) -> None:
        counts = list(counts)
        if not counts:
            return
        with self._io("count"):
            pipe = self.client().pipeline(transaction=False)
            for c in counts:
                pipe.hincrby(site_key(site, "stats"), _field(c), 1)
            pipe.execute()

    def forget(self, site: str, visitor: str) -> bool:
        with self._io("forget"):
            pipe = self.client().pipeline(transaction=False)
            pipe.delete(visitor_key(site, visitor))
            pipe.hdel(site_key(site, "blocks"), visitor)
            deleted, unblocked = pipe.execute()
        return bool(deleted or unblocked)

    def block(self, site: str, visitor: str, block: Block) -> None:
        packed = _encode([block.reason, block.until, block.at, block.by])
        with self._io("block"):
            self.client().hset(site_key(site, "blocks"), visitor, packed)

    def unblock(self, site: str, visitor: str) -> bool:
        with self._io("unblock"):
            return bool(self.client().hdel(site_key(site, "blocks"), visitor))

    def blocks(self, site: str, now: float) -> Mapping[str, Block]:
        with self._io("blocks"):
            found = self.client().hgetall(site_key(site, "blocks"))
        active = {key.decode(): _block(value) for key, value in found.items()}
        return {visitor: b for visitor, b in active.items() if b.active(now)}

    def set_agents(self, site: str, status: AgentStatus) -> None:
        packed = _encode(
            [status.online, status.available, status.queue_length, status.queue_wait, status.at]
        )
        with self._io("set_agents"):
            self.client().set(site_key(site, "agents"), packed)

    def stats(self, site: str) -> Counter[Count]:
        with self._io("stats"):
            found = self.client().hgetall(site_key(site, "stats"))
        counts = ((tuple(json.loads(k)), int(v)) for k, v in found.items())
        return Counter({k: n for k, n in counts if n})  # a corrected count may be back at 0

    def ping(self) -> None:
        with self._io("ping"):
            self.client().ping()

    def close(self) -> None:
        """Close every connection. A Cluster client's `close` leaves its nodes'
        connection pools open (each node's client does not own its pool), with
        the connections pipelines took; they are disconnected here, not left to
        the garbage collector."""
        with self._lock:
            client, self._client = self._client, None
        if client is None:
            return
        nodes = client.get_nodes() if self.cluster else []
        client.close()
        for node in nodes:
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()


def _send(pipe: Any) -> list[Any]:
    """A cluster pipeline's commands, sent to every node before any reply is read
    (one step), each answer or error in its place. No redirection or resend is
    followed here: a timed-out commit resent could answer "conflict" after it was
    applied, and a slot given back then could over-grant."""
    try:
        queue = pipe._execution_strategy.command_queue
        return list(
            pipe.send_cluster_commands(queue, raise_on_error=False, allow_redirections=False)
        )
    finally:
        pipe.reset()


def _block(packed: bytes) -> Block:
    reason, until, at, by = _decode(packed)
    return Block(reason, until, at, by)


def _trips(error: Exception) -> bool:
    """Connection trouble opens the breaker; a command the server refused does not."""
    import redis
    from redis.exceptions import ClusterError, RedisClusterException

    if isinstance(error, ClusterError | RedisClusterException):
        return True
    return not isinstance(error, redis.ResponseError)


def open_redis(url: str, **client_options: Any) -> RedisStore:
    """A RedisStore for `redis://`, `rediss://` or `redis+cluster://` URLs.

    Query options: `timeout` (connect and socket, seconds, default 0.1),
    `connect_timeout`, `socket_timeout`, `breaker` (seconds, default 1); others
    go to redis-py. `client_options` too (tests pass a counting connection).
    """
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as error:
        raise StoreError(
            f"{url.split('://')[0]}:// needs redis-py: pip install 'politely[redis]'"
        ) from error
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    try:
        timeout = float(query.pop("timeout", TIMEOUT))
        breaker = float(query.pop("breaker", BREAKER))
        connect_timeout = float(query.pop("connect_timeout", timeout))
        socket_timeout = float(query.pop("socket_timeout", timeout))
    except ValueError as error:
        raise StoreError(f"bad option in store URL {url!r}: {error}") from error
    cluster = parts.scheme == "redis+cluster"
    scheme = "redis" if cluster else parts.scheme
    plain = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 0),  # one attempt: the breaker, not a retry storm
        **client_options,
    }
    name = urlunsplit((parts.scheme, parts.hostname or "", "", "", "")) + (
        f":{parts.port}" if parts.port else ""
    )

    def connect() -> Any:
        if cluster:
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(plain, **options)
        return redis.Redis.from_url(plain, **options)

    return RedisStore(connect, cluster=cluster, breaker=breaker, name=name)
