"""The client role of SecAgg / SecAgg+, as a sans-I/O state machine.

Theory of operation
-------------------
A :class:`Client` is fed server messages through :meth:`Client.handle` and
returns the messages to send back. It does no I/O, keeps no clock and starts no
thread: transports, the simulator and the tests all drive the same object.

Phases, each entered by one server message::

    AWAIT_SETUP --RoundSetup--> AWAIT_KEYS          (sends AdvertiseKeys)
    AWAIT_KEYS --KeyDirectory--> AWAIT_SHARES       (sends ShareKeys)
    AWAIT_SHARES --ShareDelivery--> AWAIT_UNMASKING (sends MaskedInput)
                                   or AWAIT_CONSISTENCY in the active variant
                                   or AWAIT_INPUT if no input was given yet
    AWAIT_CONSISTENCY --ConsistencyRequest--> AWAIT_UNMASKING (sends signature)
    AWAIT_UNMASKING --UnmaskingRequest--> DONE      (sends UnmaskingShares)
    any --RoundAbort--> ABORTED

The input is given once, to the constructor or to :meth:`Client.set_input`, in any
phase before the masked input is sent; a second one is refused, not swapped in.

Every handler first validates the message and computes its reply without
touching ``self``, then commits the new state in one step. So a message that is
malformed, from another round, out of phase, duplicated or forged raises a
:class:`~secagg.errors.ProtocolError` (or :class:`~secagg.errors.CryptoError`)
and leaves the client exactly as it was. When the round can no longer be run
safely (too few neighbours left), the client moves to ABORTED and raises
:class:`~secagg.errors.RoundAborted`.

The privacy rule that matters most: for each neighbour the client reveals at
unmasking either the share of its self-mask seed (it survived) or the share of
its mask key (it dropped), never both, not in one request and not across two.
In the active variant the client also refuses unless, for every owner whose share
it would reveal, at least ``threshold`` of that owner's holders signed the very
survivor set it signed itself (per neighbourhood: ``threshold`` signers anywhere let a
SecAgg+ server show each neighbourhood its own set and unmask one input). It signs and reveals for
no survivor set that falls apart in the neighbour graph (partial sums), in the active
variant not even once its policy's ``c`` colluding survivors are left out: their pair
seeds are the server's, so colluders cannot be what holds the honest survivors together.

The round's parameters come from the server, but the client does not take them
on trust: its :class:`~secagg.protocol.config.ClientPolicy` (the default one if
none is given) computes the weakest graph and threshold it accepts, and a
client built with signing and identity keys refuses the passive variant. A
setup below the policy raises :class:`~secagg.errors.PolicyRefused` and changes
nothing. In the active variant the client signs its keys over the digest of the
setup it was shown and takes a neighbour's keys only if they verify over its own:
every neighbour it masks with holds the same graph, which its connectivity check
assumes (a server that showed each client its own graph seed cut the survivors into
groups that each masked only within themselves: partial sums). In both variants the
digest is also bound into every sealed share (``common.share_context``): a share
between two clients shown different setups does not open, and its sender is accused.

A neighbour whose sealed shares do not open (or open to garbage) is *accused*,
not obeyed: the client keeps none of its shares and completes the round, naming
it in its ``MaskedInput``. One bad neighbour thus costs the round one share
holder instead of the whole neighbourhood (security review M3). The client still
masks with it, and reveals nothing about that pair: the shares travel through
the server, which can garble any of them, so "did not open" is the server's to
cause. Before, an accuser skipped the pair mask and sent its seed, which the
server then removed from the accused's input; garbling the shares around one
victim made it mask with none of its neighbours and them reveal the seeds of the
masks it did add, so its revealed self-mask left its input in the clear.

Size: about 660 lines on purpose: a role's whole state machine in one file, as h11
does, so every transition and every refusal can be checked in one reading.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from numbers import Integral

import numpy as np

from secagg.crypto import aead, kx, shamir
from secagg.crypto.prg import accumulate_masks
from secagg.crypto.signing import SigningKey, VerifyKey
from secagg.errors import (
    ConfigurationError,
    CryptoError,
    DecryptionError,
    DuplicateMessage,
    InvalidMessage,
    PrivacyViolation,
    RoundAborted,
    SecretSharingError,
    UnexpectedMessage,
    UnknownParty,
    WrongRound,
    printable_line,
)
from secagg.protocol import common
from secagg.protocol.config import ClientPolicy
from secagg.protocol.graph import NeighbourGraph
from secagg.protocol.messages import (
    KEY_BYTES,
    MAX_POPULATION,
    MAX_REASON_BYTES,
    PAIR_SEED_BYTES,
    ROUND_ID_BYTES,
    Accusation,
    AdvertiseKeys,
    ClientMessage,
    ConsistencyRequest,
    ConsistencySignature,
    KeyDirectory,
    KeyEntry,
    MaskedInput,
    Message,
    RevealedShare,
    RoundAbort,
    RoundSetup,
    SealedShare,
    ServerMessage,
    ShareDelivery,
    ShareKeys,
    UnmaskingRequest,
    UnmaskingShares,
    check_fields,
)


def _check_round_id(round_id: object) -> None:
    if not isinstance(round_id, bytes) or len(round_id) != ROUND_ID_BYTES:
        raise ConfigurationError(f"a round id is {ROUND_ID_BYTES} bytes, not {round_id!r}")


class ClientPhase(Enum):
    AWAIT_SETUP = "await_setup"
    AWAIT_KEYS = "await_keys"
    AWAIT_SHARES = "await_shares"
    AWAIT_INPUT = "await_input"
    AWAIT_CONSISTENCY = "await_consistency"
    AWAIT_UNMASKING = "await_unmasking"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True)
class _HeldShares:
    """The two shares a neighbour entrusted to this client.

    Secret material, so its ``repr`` shows neither (as :class:`~secagg.crypto.shamir.Share`
    and :class:`~secagg.crypto.kx.KeyPair` do): a debug line or a traceback's locals
    printed the raw bytes of both shares, and t such lines rebuild a secret."""

    self_mask: bytes = field(repr=False)
    mask_key: bytes = field(repr=False)


class Client:
    """One party's side of a secure-aggregation round.

    ``policy`` is the client's own view of the weakest round it joins; without
    one the defaults of :class:`~secagg.protocol.config.ClientPolicy` apply (5 %
    colluders but at least 2, 10 % dropouts, at most 100 000 clients). With
    ``signing_key`` and ``identity_keys`` the client runs the active variant
    only.
    """

    def __init__(
        self,
        party: int,
        input_vector: np.ndarray | None = None,
        *,
        signing_key: SigningKey | None = None,
        identity_keys: Mapping[int, VerifyKey] | None = None,
        policy: ClientPolicy | None = None,
        round_id: bytes | None = None,
    ) -> None:
        """``round_id``: the round this client was started for, when its caller knows it
        (the in-memory simulation, a deployment that fixes round ids out of band): a
        setup of any other round is then refused (:class:`~secagg.errors.WrongRound`),
        state unchanged. Without it the client takes the first setup's round id, as it
        must when the server picks round ids, and holds every later message to it."""
        # an int, not a bool or 1.5 (taken before: no message would ever match it)
        if isinstance(party, bool) or not isinstance(party, Integral) or party < 0:
            raise ConfigurationError(f"party ids are non-negative integers, not {party!r}")
        party = int(party)
        if round_id is not None:
            _check_round_id(round_id)
        if identity_keys is not None and not isinstance(identity_keys, Mapping):
            # a list of keys failed as "cannot convert dictionary update sequence"
            raise ConfigurationError(
                "identity_keys must map party ids to verify keys, not "
                f"{type(identity_keys).__name__}"
            )
        # keys of the wrong kind failed mid-round, as an AttributeError in a handler
        if signing_key is not None and not callable(getattr(signing_key, "sign", None)):
            raise ConfigurationError(
                f"signing_key must be a signing key, not {type(signing_key).__name__}"
            )
        for peer, key in (identity_keys or {}).items():
            if not callable(getattr(key, "verify", None)):
                raise ConfigurationError(
                    f"the identity key of party {peer!r} must be a verify key, "
                    f"not {type(key).__name__}"
                )
        policy = policy if policy is not None else ClientPolicy()
        if not isinstance(policy, ClientPolicy):
            raise ConfigurationError(f"policy must be a ClientPolicy, got {type(policy).__name__}")
        if policy.require_active and (signing_key is None or not identity_keys):
            raise ConfigurationError(
                "a policy that requires the active variant needs this client's signing key "
                "and the peers' identity keys"
            )
        self.party = party
        self.policy = policy
        self._round_id = round_id
        self._signing_key = signing_key
        self._identity_keys = dict(identity_keys or {})
        self._input: np.ndarray | None = None
        if input_vector is not None:
            self._input = self._check_input(input_vector, bits=None, length=None)
        self.phase = ClientPhase.AWAIT_SETUP
        self.abort_reason: str | None = None
        self.setup: RoundSetup | None = None
        #: the digest of ``setup`` (common.setup_digest), signed with our keys and
        #: required in every neighbour's signed keys: one setup for all of us
        self._setup_digest = b""
        self._graph: NeighbourGraph | None = None
        self._channel: kx.KeyPair | None = None
        self._mask: kx.KeyPair | None = None
        self._peer_keys: dict[int, KeyEntry] = {}
        #: what this client agreed with each keyed neighbour when the key directory
        #: came, one X25519 exchange each: the channel key (seals our shares for it,
        #: opens its shares for us) and the pair seed s_uv of our masks
        self._channel_keys: dict[int, bytes] = {}
        self._pair_seeds: dict[int, bytes] = {}
        self._self_mask_seed: bytes | None = None
        self._held: dict[int, _HeldShares] = {}
        self._accused: tuple[int, ...] = ()
        self._signed_survivors: tuple[int, ...] | None = None
        self._revealed: dict[int, str] = {}

    # -- public API ------------------------------------------------------------

    @property
    def neighbours(self) -> frozenset[int]:
        if self._graph is None:
            raise UnexpectedMessage("the round has not been set up yet")
        return self._graph.neighbours(self.party)

    def handle(self, message: Message) -> list[ClientMessage]:
        """Process one server message; return the messages to send to the server."""
        if not isinstance(message, ServerMessage):
            raise UnexpectedMessage(f"a client does not accept {type(message).__name__}")
        # every field of its declared type first: a mistyped one failed deep in a
        # handler, or was taken (a setup with active=1.5 ran as active)
        check_fields(message)
        if message.recipient != self.party:
            raise UnknownParty(
                f"message for party {message.recipient} delivered to party {self.party}"
            )
        if isinstance(message, RoundSetup):
            return self._on_setup(message)
        self._check_round(message)
        if isinstance(message, RoundAbort):
            if self.phase not in (ClientPhase.DONE, ClientPhase.ABORTED):
                self.phase = ClientPhase.ABORTED
                # the server's words, made one log-safe line: a newline in them forged
                # a log line of ours, an ANSI escape painted the terminal
                reason = printable_line(message.reason)[:MAX_REASON_BYTES]
                self.abort_reason = f"server aborted the round: {reason}"
            return []
        if self.phase in (ClientPhase.DONE, ClientPhase.ABORTED):
            if isinstance(message, UnmaskingRequest):
                self._refuse_second_unmasking(message)
            raise UnexpectedMessage(f"round already finished ({self.phase.value})")
        handlers = {
            KeyDirectory: (ClientPhase.AWAIT_KEYS, self._on_key_directory),
            ShareDelivery: (ClientPhase.AWAIT_SHARES, self._on_share_delivery),
            ConsistencyRequest: (ClientPhase.AWAIT_CONSISTENCY, self._on_consistency_request),
            UnmaskingRequest: (ClientPhase.AWAIT_UNMASKING, self._on_unmasking_request),
        }
        known = handlers.get(type(message))  # type: ignore[arg-type]
        if known is None:  # the base class, a subclass: a KeyError escaped before
            raise UnexpectedMessage(f"a client has no handler for {type(message).__name__}")
        expected_phase, handler = known
        if self.phase != expected_phase:
            raise UnexpectedMessage(
                f"{type(message).__name__} is not accepted in phase {self.phase.value}"
            )
        return handler(message)

    def expect_round(self, round_id: bytes) -> None:
        """Hold this client to ``round_id``, as if it had been given to the constructor.

        For a caller that learns the round's id only after building the client (a
        federation branch derives it from the round it started and the spec it
        approved, :meth:`secagg.aggregation.masking.MaskingClient.bind_round`). Only
        before the setup: once keys are advertised the round id is fixed. A client
        already held to another id refuses (:class:`~secagg.errors.ConfigurationError`),
        state unchanged: one client is one round."""
        _check_round_id(round_id)
        if self.setup is not None or self.phase != ClientPhase.AWAIT_SETUP:
            raise UnexpectedMessage("the round is already set up: its round id is fixed")
        if self._round_id is not None and self._round_id != round_id:
            raise ConfigurationError("this client was already started for another round id")
        self._round_id = round_id

    def check_accepts_input(self) -> None:
        """Raise :class:`~secagg.errors.UnexpectedMessage` unless :meth:`set_input` would
        take an input now.

        A client masks one input per round, given once (to the constructor or to
        :meth:`set_input`). A second one is refused rather than taken: silently
        replacing the first would let a caller that retried, or two code paths that
        both set it, send a vector other than the one it believes it sent, with no
        sign of it. A caller that must do work before calling :meth:`set_input`
        (encoding, drawing a noise share) asks first, so a refusal costs nothing."""
        if self.phase == ClientPhase.ABORTED:
            # said "the masked input has already been sent", also of a round that
            # aborted before it was: a caller would believe its update had left
            raise UnexpectedMessage("the round was aborted; no input is taken")
        if self.phase not in (
            ClientPhase.AWAIT_SETUP,
            ClientPhase.AWAIT_KEYS,
            ClientPhase.AWAIT_SHARES,
            ClientPhase.AWAIT_INPUT,
        ):
            raise UnexpectedMessage("the masked input has already been sent")
        if self._input is not None:
            raise UnexpectedMessage(
                "this client's input was already given; a round masks one input, given once"
            )

    def set_input(self, vector: np.ndarray) -> list[ClientMessage]:
        """Provide the (encoded) input, once; returns the masked input if the round is
        waiting for it. A second input is refused (see :meth:`check_accepts_input`)."""
        self.check_accepts_input()
        setup = self.setup
        checked = self._check_input(
            vector,
            bits=setup.bits if setup else None,
            length=setup.vector_length if setup else None,
        )
        if self.phase != ClientPhase.AWAIT_INPUT:
            self._input = checked
            return []
        reply = self._masked_input(checked, self._held, self._accused)
        self._input = None
        self.phase = self._phase_after_masking()
        return [reply]

    # -- helpers ---------------------------------------------------------------

    def _check_round(self, message: Message) -> None:
        if self.setup is None:
            raise UnexpectedMessage(f"{type(message).__name__} before the round setup")
        if message.round_id != self.setup.round_id:
            raise WrongRound("message belongs to another round")

    @staticmethod
    def _check_input(vector: np.ndarray, *, bits: int | None, length: int | None) -> np.ndarray:
        try:
            arr = np.asarray(vector)
        except ValueError:  # a ragged nested list
            raise ConfigurationError("the input must be a 1-D vector (ragged rows)") from None
        if arr.ndim != 1:
            raise ConfigurationError("the input must be a 1-D vector")
        if arr.dtype.kind != "u":
            raise ConfigurationError(
                f"the input must be encoded as unsigned integers (got {arr.dtype}); "
                "use secagg.encoding to map floats into Z_2^b"
            )
        if length is not None and len(arr) != length:
            raise ConfigurationError(f"the round expects {length} coordinates, got {len(arr)}")
        if bits is not None:
            if arr.dtype.itemsize * 8 > bits and len(arr) and int(arr.max()) >> bits:
                raise ConfigurationError(f"input values do not fit in {bits} bits")
            return arr.astype(common.word_dtype(bits), copy=False)
        return arr

    def _abort(self, reason: str) -> RoundAborted:
        self.phase = ClientPhase.ABORTED
        self.abort_reason = reason
        return RoundAborted(reason, phase="client")

    def _phase_after_masking(self) -> ClientPhase:
        assert self.setup is not None
        return ClientPhase.AWAIT_CONSISTENCY if self.setup.active else ClientPhase.AWAIT_UNMASKING

    # -- phase handlers ----------------------------------------------------------

    def _on_setup(self, msg: RoundSetup) -> list[ClientMessage]:
        if self.phase != ClientPhase.AWAIT_SETUP:
            raise UnexpectedMessage("the round is already set up")
        if len(msg.round_id) != ROUND_ID_BYTES:  # taken before: no reply could be encoded
            raise InvalidMessage(f"a round id is {ROUND_ID_BYTES} bytes, not {len(msg.round_id)}")
        if self._round_id is not None and msg.round_id != self._round_id:
            raise WrongRound("a setup of another round than the one this client was started for")
        if not 2 <= msg.num_clients or self.party >= msg.num_clients:
            raise InvalidMessage(f"party {self.party} is not in a round of {msg.num_clients}")
        if msg.bits not in (32, 64):
            raise InvalidMessage(f"unsupported bit width {msg.bits}")
        if not 1 <= msg.vector_length <= common.MAX_VECTOR_LENGTH:
            raise InvalidMessage(f"unsupported vector length {msg.vector_length}")
        if msg.population != 0 and not msg.num_clients <= msg.population <= MAX_POPULATION:
            raise InvalidMessage(
                f"a round of {msg.num_clients} cannot be drawn from a population of "
                f"{msg.population}"
            )
        try:
            graph = NeighbourGraph(msg.num_clients, msg.graph, msg.degree, msg.graph_seed)
        except ConfigurationError as exc:
            raise InvalidMessage(f"bad neighbour graph: {exc}") from exc
        if not 1 <= msg.threshold <= msg.degree + 1:
            raise InvalidMessage(
                f"threshold {msg.threshold} must be between 1 and {msg.degree + 1} share holders"
            )
        if msg.active and (self._signing_key is None or not self._identity_keys):
            raise InvalidMessage(
                "the active variant needs this client's signing key and the peers' identity keys"
            )
        self.policy.check(
            msg, keys_configured=self._signing_key is not None and bool(self._identity_keys)
        )
        checked_input = None
        if self._input is not None:
            try:
                checked_input = self._check_input(
                    self._input, bits=msg.bits, length=msg.vector_length
                )
            except ConfigurationError as exc:
                raise InvalidMessage(
                    f"round parameters do not fit this client's input: {exc}"
                ) from exc
        channel, mask = kx.generate_keypair(), kx.generate_keypair()
        digest = common.setup_digest(msg)
        signature = b""
        if msg.active:
            assert self._signing_key is not None
            signature = self._signing_key.sign(
                common.advertise_payload(
                    msg.round_id, self.party, channel.public_bytes, mask.public_bytes, digest
                )
            )
        reply = AdvertiseKeys(
            msg.round_id, self.party, channel.public_bytes, mask.public_bytes, signature
        )
        # commit
        self.setup, self._graph, self._setup_digest = msg, graph, digest
        self._channel, self._mask = channel, mask
        self._input = checked_input
        self.phase = ClientPhase.AWAIT_KEYS
        return [reply]

    def _on_key_directory(self, msg: KeyDirectory) -> list[ClientMessage]:
        setup, graph = self.setup, self._graph
        assert setup is not None and graph is not None and self._channel and self._mask
        neighbours = graph.neighbours(self.party)
        peers: dict[int, KeyEntry] = {}
        channel_keys: dict[int, bytes] = {}
        pair_seeds: dict[int, bytes] = {}
        for entry in msg.entries:
            if entry.party == self.party:
                raise InvalidMessage("the key directory must not list the recipient itself")
            if entry.party not in neighbours:
                raise UnknownParty(f"party {entry.party} is not a neighbour of {self.party}")
            if entry.party in peers:
                raise DuplicateMessage(f"party {entry.party} listed twice in the key directory")
            if len(entry.channel_key) != KEY_BYTES or len(entry.mask_key) != KEY_BYTES:
                raise InvalidMessage(f"party {entry.party} advertised keys of the wrong size")
            if setup.active:
                identity = self._identity_keys.get(entry.party)
                if identity is None:
                    raise UnknownParty(f"no identity key for party {entry.party}")
                # over the setup *we* were shown: keys advertised under another setup
                # (another graph seed, threshold, ...) do not verify, so every pair mask
                # and share of ours is with a neighbour that holds the same graph
                identity.verify(
                    entry.signature,
                    common.advertise_payload(
                        setup.round_id,
                        entry.party,
                        entry.channel_key,
                        entry.mask_key,
                        self._setup_digest,
                    ),
                )
            # Both agreements with this neighbour happen here, once each, after its
            # signature (active variant) so no work is spent on unauthenticated keys:
            # the channel key (to seal our shares for it and open its shares for us)
            # and the pair seed of our masks. They double as the low-order check (an
            # all-zero shared secret raises), which an honest server made at
            # advertisement.
            try:
                channel_keys[entry.party] = kx.derive_key(
                    self._channel.private,
                    entry.channel_key,
                    purpose=common.CHANNEL_PURPOSE,
                    round_id=setup.round_id,
                    party_a=self.party,
                    party_b=entry.party,
                )
                pair_seeds[entry.party] = kx.derive_key(
                    self._mask.private,
                    entry.mask_key,
                    purpose=common.MASK_PURPOSE,
                    round_id=setup.round_id,
                    party_a=self.party,
                    party_b=entry.party,
                    length=PAIR_SEED_BYTES,
                )
            except CryptoError as exc:
                raise InvalidMessage(
                    f"party {entry.party} advertised an invalid key: {exc}"
                ) from exc
            peers[entry.party] = entry
        if len(peers) + 1 < setup.threshold:
            raise self._abort(
                f"only {len(peers)} neighbours advertised keys; {setup.threshold - 1} needed"
            )
        holders = sorted([*peers, self.party])
        seed = os.urandom(common.SELF_MASK_SEED_BYTES)
        seed_shares, key_shares = shamir.split_many(
            [seed, self._mask.private_bytes()],
            setup.threshold,
            [common.share_point(p) for p in holders],
        )
        sealed: list[SealedShare] = []
        own: _HeldShares | None = None
        for holder, s_share, k_share in zip(holders, seed_shares, key_shares, strict=True):
            held = _HeldShares(s_share.to_bytes(), k_share.to_bytes())
            if holder == self.party:
                own = held
                continue
            key = channel_keys[holder]
            context = common.share_context(
                self._channel.public_bytes,
                self._mask.public_bytes,
                peers[holder].channel_key,
                peers[holder].mask_key,
                self._setup_digest,
            )
            sealed.append(
                SealedShare(
                    holder,
                    aead.seal(
                        key,
                        held.self_mask + held.mask_key,
                        label=common.SHARE_LABEL,
                        round_id=setup.round_id,
                        sender=self.party,
                        recipient=holder,
                        context=context,
                    ),
                )
            )
        assert own is not None
        reply = ShareKeys(
            setup.round_id,
            self.party,
            common.self_mask_commitment(setup.round_id, self.party, seed),
            tuple(sealed),
        )
        # commit
        self._peer_keys = peers
        self._channel_keys = channel_keys
        self._pair_seeds = pair_seeds
        self._self_mask_seed = seed
        self._held = {self.party: own}
        self.phase = ClientPhase.AWAIT_SHARES
        return [reply]

    def _on_share_delivery(self, msg: ShareDelivery) -> list[ClientMessage]:
        setup = self.setup
        assert setup is not None and self._channel is not None and self._mask is not None
        received: dict[int, _HeldShares] = {}
        accused: set[int] = set()
        for sealed in msg.shares:
            sender = sealed.peer
            if sender not in self._peer_keys:
                raise UnknownParty(f"shares from party {sender}, which is not a keyed neighbour")
            if sender in received or sender in accused:
                raise DuplicateMessage(f"two share bundles from party {sender}")
            held = self._open_shares(sealed)
            if held is None:
                accused.add(sender)
            else:
                received[sender] = held
        # the accused are alive and hold our shares: they count for our secrets
        if len(received) + len(accused) + 1 < setup.threshold:
            raise self._abort(
                f"only {len(received) + len(accused)} neighbours shared keys; "
                f"{setup.threshold - 1} needed"
            )
        held_all = {**self._held, **received}
        accused_ids = tuple(sorted(accused))
        if self._input is None:
            self._held = held_all
            self._accused = accused_ids
            self.phase = ClientPhase.AWAIT_INPUT
            return []
        reply = self._masked_input(self._input, held_all, accused_ids)
        self._held = held_all
        self._accused = accused_ids
        self._input = None
        self.phase = self._phase_after_masking()
        return [reply]

    def _open_shares(self, sealed: SealedShare) -> _HeldShares | None:
        """The two shares a neighbour sealed for us, or None if its bundle is bad.

        A bundle that fails authentication, or authenticates but does not hold
        two well-formed shares, came (as far as this client can tell) from a
        sender that is not following the protocol: the caller accuses it rather
        than refusing the whole delivery, which would let one bad client drop
        out all its neighbours.
        """
        setup = self.setup
        assert setup is not None and self._channel is not None and self._mask is not None
        sender = sealed.peer
        peer = self._peer_keys[sender]
        key = self._channel_keys[sender]  # agreed with every keyed neighbour
        try:
            plain = aead.open_sealed(
                key,
                sealed.ciphertext,
                label=common.SHARE_LABEL,
                round_id=setup.round_id,
                sender=sender,
                recipient=self.party,
                context=common.share_context(
                    peer.channel_key,
                    peer.mask_key,
                    self._channel.public_bytes,
                    self._mask.public_bytes,
                    self._setup_digest,
                ),
            )
        except DecryptionError:
            return None
        if len(plain) != common.SEALED_PLAINTEXT_BYTES:
            return None
        held = _HeldShares(
            plain[: common.SELF_MASK_SHARE_BYTES], plain[common.SELF_MASK_SHARE_BYTES :]
        )
        point = common.share_point(self.party)  # where these shares were evaluated
        try:  # check the field encoding now, so unmasking never sends garbage
            shamir.Share.from_bytes(point, held.self_mask)
            shamir.Share.from_bytes(point, held.mask_key)
        except SecretSharingError:
            return None
        return held

    def _masked_input(
        self, vector: np.ndarray, held: Mapping[int, _HeldShares], accused: tuple[int, ...]
    ) -> MaskedInput:
        """y = x + PRG(b) + sum_{v<u} PRG(s_uv) - sum_{v>u} PRG(s_uv)  (mod 2^bits).

        The pairwise masks run over every neighbour whose shares were delivered (the
        server's U2 restricted to our neighbourhood), those we hold and the accused
        alike: exactly the set the server removes the masks of when they drop later.
        Masking with the accused is what keeps our input hidden when the server
        garbles the shares sent to us: it cannot thereby make us skip the masks of
        honest neighbours whose seeds it never learns. An accusation names the party
        and the mask key we saw for it (public), so the server can tell a key altered
        in relay, whose pair masks would not cancel; in the active variant the list
        is signed, so the server can show an operator who accused whom but cannot
        make up an accusation.
        """
        setup = self.setup
        assert setup is not None and self._mask is not None and self._self_mask_seed is not None
        add = [self._self_mask_seed]
        subtract = []
        for peer in sorted({*held, *accused}):
            if peer == self.party:
                continue
            (add if peer < self.party else subtract).append(self._pair_seed(peer))
        accusations = tuple(Accusation(p, self._peer_keys[p].mask_key) for p in accused)
        signature = b""
        if setup.active and accusations:
            assert self._signing_key is not None
            signature = self._signing_key.sign(
                common.accusation_payload(setup.round_id, self.party, accusations)
            )
        masked = np.array(vector, dtype=common.word_dtype(setup.bits), copy=True)
        accumulate_masks(masked, add, subtract)
        return MaskedInput(setup.round_id, self.party, setup.bits, masked, accusations, signature)

    def _pair_seed(self, peer: int) -> bytes:
        """s_uv: the seed of the mask this client and ``peer`` add with opposite signs."""
        return self._pair_seeds[peer]

    def _survivor_checks(self, survivors: tuple[int, ...]) -> None:
        setup, graph = self.setup, self._graph
        assert setup is not None and graph is not None
        if not common.is_strictly_increasing(survivors):
            raise InvalidMessage("survivor list must be sorted and free of duplicates")
        if survivors and not 0 <= survivors[-1] < setup.num_clients:
            raise UnknownParty("survivor list names a party outside the round")
        if self.party not in survivors:
            raise InvalidMessage("the survivor list omits this client, which sent its input")
        holders = graph.holders(self.party)
        for party in holders.intersection(survivors):
            if party not in self._held and party not in self._accused:
                raise InvalidMessage(
                    f"party {party} is listed as a survivor but never shared keys with us"
                )
        # Only survivor-to-survivor pair masks survive the unmasking. Survivors in
        # pieces with no edge between them (the ring cut by dropouts, or by a server
        # that claims them) would let the server sum each piece alone: no share leaves
        # for such a set. The server aborts these rounds itself; this holds a server
        # that does not to the same rule.
        if not graph.connects(survivors):
            raise PrivacyViolation(
                "the survivors are not connected in the neighbour graph: unmasking them "
                "would reveal partial sums; refused"
            )
        # A colluding survivor hands the server its pair seeds, so only edges between
        # honest survivors hold the sum together. In the active variant the server
        # picks whom to call dropped, and could leave survivors connected only through
        # its colluders (n = 20: one in each of two runs of k/2, two arcs of 6 inputs
        # summed alone): they must stay connected however our policy's c are left out.
        # The passive variant trusts the server's list and seed (random placement);
        # a policy that skips its parameter check (research: the caller picked k and
        # t, possibly k <= c, where no round could pass) assumes no colluders here.
        colluders = self.policy.colluders(setup.num_clients, setup.population)
        if not self.policy.check_parameters:
            colluders = 0
        if setup.active and not graph.connects_despite(survivors, colluders):
            raise PrivacyViolation(
                f"the survivors fall apart in the neighbour graph once {colluders} "
                "colluding survivors (this client's policy) are left out: unmasking them "
                "would reveal partial sums of honest inputs; refused"
            )

    def _on_consistency_request(self, msg: ConsistencyRequest) -> list[ClientMessage]:
        setup, graph = self.setup, self._graph
        assert setup is not None and graph is not None and self._signing_key is not None
        self._survivor_checks(msg.survivors)
        if len(graph.holders(self.party).intersection(msg.survivors)) < setup.threshold:
            raise self._abort("fewer than threshold of our share holders survived")
        signature = self._signing_key.sign(
            common.consistency_payload(setup.round_id, msg.survivors)
        )
        self._signed_survivors = msg.survivors
        self.phase = ClientPhase.AWAIT_UNMASKING
        return [ConsistencySignature(setup.round_id, self.party, signature)]

    def _requested_kinds(self, msg: UnmaskingRequest) -> dict[int, str]:
        """Which share of each held neighbour the request asks for ('self_mask' or 'mask_key')."""
        survivors, dropped = set(msg.survivors), set(msg.dropped)
        both = survivors & dropped
        if both:
            raise PrivacyViolation(
                f"request asks for both shares of parties {sorted(both)[:5]}: refused"
            )
        kinds: dict[int, str] = {}
        for owner in self._held:
            if owner in survivors:
                kinds[owner] = "self_mask"
            elif owner in dropped:
                kinds[owner] = "mask_key"
            else:
                raise InvalidMessage(f"request does not say whether party {owner} survived")
        return kinds

    def _refuse_second_unmasking(self, msg: UnmaskingRequest) -> None:
        if self.setup is None or msg.round_id != self.setup.round_id:
            return
        try:
            kinds = self._requested_kinds(msg)
        except PrivacyViolation:
            raise
        except InvalidMessage:
            return
        for owner, kind in kinds.items():
            if self._revealed.get(owner, kind) != kind:
                raise PrivacyViolation(
                    f"already revealed the {self._revealed[owner]} share of party {owner}; "
                    f"refusing to reveal its {kind} share"
                )

    def _check_neighbourhood_signatures(
        self, survivors: tuple[int, ...], signatures: Mapping[int, bytes], kinds: Mapping[int, str]
    ) -> None:
        """Refuse unless, for every owner whose share this client would reveal, ``t`` of
        that owner's own holders signed ``survivors`` (the consistency check of Bonawitz
        et al., round 3, held per neighbourhood as SecAgg+ needs it).

        Why per owner: ``t`` signatures from anywhere say nothing in a sparse graph,
        where ``t`` is a neighbourhood's threshold and many disjoint groups of ``t``
        can each sign their own survivor list. A server then showed a victim ``u`` and
        the neighbours it masked with one list (everyone survived) and the other
        holders of those neighbours another (they dropped): the first revealed ``u``'s
        self-mask, the second the neighbours' mask keys, and ``u``'s input came out
        alone (n = 10, k = 6, t = 5, 2 colluders: tests/protocol/
        test_neighbourhood_consistency.py). Honest parties sign one list each, and
        ``2t > k + 1 + c`` (the active variant's threshold) leaves room for one list
        with ``t`` signers among any owner's ``k + 1`` holders: so all honest holders
        that reveal a share of one owner act on the same list, as on the complete
        graph, whose rule is the old one (every party holds every owner's shares).
        There, ``u``'s holders could not reveal against the others' list.

        Cost: each signature is verified at most once, and only until every owner has
        ``t`` valid ones among its holders: ``t`` in the complete graph as before, at
        most the ``2k + 1`` parties within two hops in a Harary graph, about ``2t`` in
        practice (active defaults, n = 100: 36 a client instead of 18, 5 ms more;
        n = 300: 74 instead of 37, about 17 ms more). Any invalid
        signature met on the way refuses the request. An honest round is never refused
        by this: an owner with fewer than ``t`` holders among the signers has fewer
        than ``t`` holders left to reveal its shares, and its round aborts anyway."""
        setup, graph = self.setup, self._graph
        assert setup is not None and graph is not None
        payload = common.consistency_payload(setup.round_id, survivors)
        valid: set[int] = set()
        signers = frozenset(signatures)
        # every party holds every owner's shares: one check, not n sets of n (O(n^2))
        complete = graph.degree >= graph.num_clients - 1
        for owner in sorted(kinds):
            backers = signers if complete else graph.holders(owner) & signers
            if len(backers) < setup.threshold:
                raise PrivacyViolation(
                    f"only {len(backers)} of party {owner}'s share holders confirmed the "
                    f"survivor set; {setup.threshold} needed before revealing its share"
                )
            confirmed = len(backers & valid)
            for party in sorted(backers - valid):
                if confirmed >= setup.threshold:
                    break
                self._identity_keys[party].verify(signatures[party], payload)
                valid.add(party)
                confirmed += 1

    def _on_unmasking_request(self, msg: UnmaskingRequest) -> list[ClientMessage]:
        setup, graph = self.setup, self._graph
        assert setup is not None and graph is not None
        for ids in (msg.survivors, msg.dropped):
            if not common.is_strictly_increasing(ids):
                raise InvalidMessage(
                    "survivor and dropout lists must be sorted, without duplicates"
                )
        kinds = self._requested_kinds(msg)
        if self.party in msg.dropped:
            raise InvalidMessage("the request claims that this client dropped out")
        # active: the very list this client signed passed these checks when it signed
        # (nothing they read has changed since), so only another list is checked again
        # (two O(n) connectivity checks a round were one too many at n = 100 000)
        if not setup.active or msg.survivors != self._signed_survivors:
            self._survivor_checks(msg.survivors)
        if setup.active:
            if msg.survivors != self._signed_survivors:
                raise PrivacyViolation("survivor set differs from the one this client signed")
            signatures: dict[int, bytes] = {}
            for item in msg.signatures:
                if item.party in signatures:
                    raise DuplicateMessage(f"two consistency signatures from party {item.party}")
                if item.party not in msg.survivors:
                    raise InvalidMessage(f"signature from non-survivor {item.party}")
                if item.party not in self._identity_keys:
                    raise UnknownParty(f"no identity key for party {item.party}")
                signatures[item.party] = item.signature
            if len(signatures) < setup.threshold:
                raise PrivacyViolation(
                    f"only {len(signatures)} survivors confirmed the survivor set; "
                    f"{setup.threshold} needed before revealing shares"
                )
            self._check_neighbourhood_signatures(msg.survivors, signatures, kinds)
        elif len(graph.holders(self.party).intersection(msg.survivors)) < setup.threshold:
            raise self._abort("fewer than threshold of our share holders survived")
        self_mask = tuple(
            RevealedShare(o, self._held[o].self_mask)
            for o in sorted(kinds)
            if kinds[o] == "self_mask"
        )
        mask_key = tuple(
            RevealedShare(o, self._held[o].mask_key)
            for o in sorted(kinds)
            if kinds[o] == "mask_key"
        )
        self._revealed = kinds
        self.phase = ClientPhase.DONE
        return [UnmaskingShares(setup.round_id, self.party, self_mask, mask_key)]
