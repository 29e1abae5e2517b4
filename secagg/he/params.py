"""CKKS parameters for a sum of n vectors, and the chooser that picks the smallest safe set.

Theory of operation
-------------------
The server only *adds* ciphertexts, so no multiplicative depth is needed and the
modulus chain can be minimal: data primes q_1..q_k (k = 1 unless the precision
asks for more than SEAL's 60-bit primes) followed by one *special* prime p. SEAL
keeps p for key switching, which this backend never does; TenSEAL cannot create
a context without it (it always generates relinearization keys), so p is taken
as small as SEAL can find (a prime = 1 mod 2N), which leaves the security budget
to the data primes. Ciphertexts live at the data level: two polynomials of N
coefficients modulo q = q_1...q_k, carrying N real values (two per complex
slot, below).

Three constraints fix the parameters, checked in this order for N = 1024, 2048,
... and the first N that meets all three wins:

1. **Precision.** A value x is encoded as round(x * scale). Decrypting a sum of n
   fresh ciphertexts gives each slot the sum plus an error that is, per slot,
   close to Gaussian. Measured on TenSEAL 0.3.18 (SEAL 4, public-key encryption,
   which encrypts at the key level and drops p, so the size of p does not
   matter): the error of one fresh ciphertext has an average standard deviation
   of 0.167 * N / scale over all slots. Different slots see different standard
   deviations, up to about 0.5 * N / scale for the worst slot of a given key,
   because the dominant term is the rounding error times the secret key,
   evaluated at that slot's root of unity. Independent encryptions add in
   variance, so the error of the sum grows as sqrt(n). The documented bound is::

       error_bound(n) = TAIL_Z * sqrt(n) * NOISE_STD_PER_DEGREE * N / scale

   with NOISE_STD_PER_DEGREE = 0.75, which is above every worst slot measured,
   and TAIL_Z = 7, a Gaussian tail of about 3e-12 per coordinate. Encoding and
   decoding run a double-precision FFT, which adds n * value_bound * 2^-44 (with
   margin) and sets a floor that no scale can beat. The scale is the smallest
   power of two that brings error_bound(num_clients) down to the requested
   precision, so a bigger ring needs a bigger scale.
2. **No overflow.** The decrypted coefficients must stay inside (-q/2, q/2). The
   coefficients of an encoded vector are bounded by its largest slot magnitude. A slot
   carries two real values, one in its real and one in its imaginary part (below), so
   its magnitude is at most sqrt(2) times the largest value, and that is reached: not
   by an all-equal vector (a constant slot C(1 + i) gives two coefficients of C), but
   by the values C, C, -C, C repeated, whose slots are in phase with coefficient N/4 at
   SEAL's roots zeta^(3^j) (tests/he/test_precision_at_design_edges.py: without the
   sqrt(2) such sums wrap). The requirement is
   q > 2 * sqrt(2) * (n * value_bound + error_bound(n)) * scale. This is checked against
   the actual primes, which are the ones SEAL's CoeffModulus.Create picks: the
   largest primes = 1 mod 2N below 2^bits.
3. **Security.** The total bit count of all primes, p included, must be at most
   the HomomorphicEncryption.org standard's bound for N (Albrecht et al., Homomorphic
   Encryption Security Standard v1.1, 2018, for a ternary secret and an error
   standard deviation of 3.2, which is what SEAL samples). The table below is
   SEAL's ``util/hestdparms.h`` (``SEAL_HE_STD_PARMS_*_TC``), the same numbers
   that ``CoeffModulus.MaxBitCount`` returns at run time. SEAL refuses contexts
   over the 128-bit bound anyway; checking here means an impossible request
   fails with a reason instead of a C++ exception.

Two values per slot: CKKS encodes N/2 *complex* slots. TenSEAL's CKKSVector
fills only their real parts, which wastes half of every ciphertext; this backend
encodes values 2j and 2j + 1 as the real and imaginary part of slot j
(:mod:`secagg.he.chunks`), so a ciphertext carries N real values. Addition adds
real and imaginary parts separately, so the sum is exact in both. The error of
the imaginary part is measured to be the same as the real part's (the error
polynomial has real coefficients, so its value at each root of unity is a complex
number whose two parts have equal spread), and the bound below covers both.

Size on the wire: a ciphertext is two polynomials of N coefficients, each held
as k residues, one per data prime q_j. SEAL stores each residue in 8 bytes and
TenSEAL ships them zstd-compressed, about 0.58 * (bits of q) bytes per slot value.
The envelope instead carries them bit-packed at exactly the bits of their prime
(:mod:`secagg.he.packing`), which is 2 * N * (bits of q) / 8 bytes per ciphertext
(:meth:`CKKSParameters.packed_ciphertext_bytes`), or 2 * (bits of q) / 8 bytes per
real value (N values per ciphertext): 10 bytes for the 40-bit q of 4 clients at
precision 1e-6, 11.75 for n = 100 (47 bits). One value per slot, as TenSEAL packs,
cost twice that (23 bytes at n = 100). Each chunk adds a 26-byte header
(:mod:`secagg.he.envelope`), and a vector's last chunk pays for all N values
however few it fills. So the size depends on the data modulus, not on N.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

from secagg.he.errors import HEParameterError

#: Largest total coefficient-modulus bits per ring degree, ternary secret, classical
#: attacker (HomomorphicEncryption.org standard v1.1; SEAL ``util/hestdparms.h``).
HE_STANDARD_MAX_BITS: dict[int, dict[int, int]] = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}
RING_DEGREES = (1024, 2048, 4096, 8192, 16384, 32768)

#: SEAL's upper limit on one prime of the coefficient modulus.
SEAL_MAX_PRIME_BITS = 60
#: Worst-slot standard deviation of one fresh ciphertext's error, in units of N / scale.
NOISE_STD_PER_DEGREE = 0.75
#: Gaussian tail factor of the per-coordinate error bound (two-sided tail about 2.6e-12).
TAIL_Z = 7.0
#: Largest slot magnitude per unit of the largest value: a slot holds two values
#: (real and imaginary part), so |slot| <= sqrt(2) * max |value|.
SLOT_MAGNITUDE = math.sqrt(2.0)
#: Relative error of SEAL's double-precision FFT encode and decode, with a 16x margin:
#: no scale makes the sum more accurate than about n * value_bound * 2^-48.
FLOAT_RELATIVE_ERROR = 2.0**-44


def max_coeff_modulus_bits(poly_modulus_degree: int, security_bits: int = 128) -> int:
    """The standard's largest total modulus size for this ring at this security level."""
    try:
        return HE_STANDARD_MAX_BITS[security_bits][poly_modulus_degree]
    except KeyError:
        raise HEParameterError(
            f"no HE-standard entry for N={poly_modulus_degree} at {security_bits}-bit security; "
            f"N must be one of {RING_DEGREES} and the level one of {sorted(HE_STANDARD_MAX_BITS)}"
        ) from None


def _is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (these bases suffice), enough for 60 bits."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _ntt_primes(poly_modulus_degree: int, bits: int, count: int) -> list[int]:
    """The ``count`` largest primes = 1 mod 2N below 2^bits, as SEAL's CoeffModulus.Create picks.

    Raises :class:`HEParameterError` when the range (2^(bits-1), 2^bits) has fewer.
    """
    step = 2 * poly_modulus_degree
    value, lower = (1 << bits) - step + 1, 1 << (bits - 1)
    found: list[int] = []
    while len(found) < count and value > lower:
        if _is_prime(value):
            found.append(value)
        value -= step
    if len(found) < count:
        raise HEParameterError(
            f"only {len(found)} prime(s) = 1 mod {step} have {bits} bits; {count} needed"
        )
    return found


def coefficient_primes(
    poly_modulus_degree: int, coeff_mod_bit_sizes: tuple[int, ...]
) -> tuple[int, ...]:
    """The primes SEAL will build for these bit sizes, in the same order.

    Like SEAL's ``CoeffModulus::Create``, repeated sizes take their primes from
    the smallest up: the first 32-bit entry gets the smaller of two 32-bit primes.
    """
    by_size: dict[int, list[int]] = {}
    for bits in set(coeff_mod_bit_sizes):
        count = coeff_mod_bit_sizes.count(bits)
        by_size[bits] = _ntt_primes(poly_modulus_degree, bits, count)  # largest first
    return tuple(by_size[bits].pop() for bits in coeff_mod_bit_sizes)


@dataclass(frozen=True)
class CKKSParameters:
    """One CKKS parameter set together with the sum it was chosen for.

    ``coeff_mod_bit_sizes`` lists the data primes and then the special prime, as
    TenSEAL takes them. ``num_clients``, ``value_bound`` and ``precision`` are the
    design point: at most ``num_clients`` vectors, each coordinate in
    [-value_bound, value_bound], and a decrypted sum whose error per coordinate is
    at most ``precision`` (except with the tail probability of :data:`TAIL_Z`).
    Construction validates everything, so a hand-written set that is insecure,
    can overflow or misses its precision is refused, the same as a chosen one.
    """

    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple[int, ...]
    scale_bits: int
    num_clients: int
    value_bound: float
    precision: float
    security_bits: int = 128

    def __post_init__(self) -> None:
        self._check_integer_fields()
        clients, bound, precision = _design_point(
            self.num_clients, self.value_bound, self.precision
        )
        object.__setattr__(self, "num_clients", clients)
        object.__setattr__(self, "value_bound", bound)
        object.__setattr__(self, "precision", precision)
        limit = max_coeff_modulus_bits(self.poly_modulus_degree, self.security_bits)
        sizes = self.coeff_mod_bit_sizes
        if len(sizes) < 2:
            raise HEParameterError("need at least one data prime and the special prime")
        if any(not 2 <= b <= SEAL_MAX_PRIME_BITS for b in sizes):
            raise HEParameterError(f"prime sizes must lie in [2, {SEAL_MAX_PRIME_BITS}] bits")
        if sum(sizes) > limit:
            raise HEParameterError(
                f"{sum(sizes)} modulus bits exceed the {limit}-bit bound of the HE standard "
                f"for N={self.poly_modulus_degree} at {self.security_bits}-bit security"
            )
        primes = coefficient_primes(self.poly_modulus_degree, sizes)
        q = math.prod(primes[:-1])
        if self.scale_bits < 1 or q.bit_length() < self.scale_bits + 2:
            raise HEParameterError(
                f"scale 2^{self.scale_bits} does not fit below the "
                f"{q.bit_length()}-bit data modulus"
            )
        worst = self.num_clients * self.value_bound + self.error_bound(self.num_clients)
        if q <= 2 * SLOT_MAGNITUDE * worst * self.scale:
            raise HEParameterError(
                f"a sum of {self.num_clients} values of magnitude {self.value_bound} at scale "
                f"2^{self.scale_bits} can overflow the {q.bit_length()}-bit data modulus"
            )
        if self.error_bound(self.num_clients) > self.precision:
            raise HEParameterError(
                f"error bound {self.error_bound(self.num_clients):.3g} for {self.num_clients} "
                f"summands exceeds the requested precision {self.precision:.3g}"
            )

    def _check_integer_fields(self) -> None:
        """Ring, prime sizes, scale bits and security level as Python ints, or refused.

        Why: a ring of ``2048.0`` passed the HE-standard table (``2048.0 == 2048`` as a
        key) and failed in the prime search as Python's TypeError, prime sizes of
        ``29.0`` failed in ``1 << bits``, and ``scale_bits=25.5`` passed as a scale of
        2^25.5, no power of two. numpy integers are integers (taken as Python ints);
        bools are not (``True`` read as 1).
        """

        def integer(name: str, value: object) -> int:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise HEParameterError(f"{name} must be an integer, got {value!r}")
            return int(value)

        for name in ("poly_modulus_degree", "scale_bits", "security_bits"):
            object.__setattr__(self, name, integer(name, getattr(self, name)))
        sizes = self.coeff_mod_bit_sizes
        if isinstance(sizes, str | bytes) or not isinstance(sizes, Iterable):
            raise HEParameterError(
                f"coeff_mod_bit_sizes must be a sequence of prime sizes, got {sizes!r}"
            )
        object.__setattr__(
            self,
            "coeff_mod_bit_sizes",
            tuple(integer("coeff_mod_bit_sizes", bits) for bits in sizes),
        )

    @property
    def slots(self) -> int:
        """Complex slots per ciphertext (N/2); each carries two real values."""
        return self.poly_modulus_degree // 2

    @property
    def values_per_ciphertext(self) -> int:
        """Real values per ciphertext: two per complex slot, N in all."""
        return self.poly_modulus_degree

    @property
    def scale(self) -> float:
        return float(2**self.scale_bits)

    @property
    def data_primes(self) -> int:
        """How many primes a ciphertext carries (the special prime is dropped after encryption)."""
        return len(self.coeff_mod_bit_sizes) - 1

    @property
    def total_bits(self) -> int:
        return sum(self.coeff_mod_bit_sizes)

    def error_bound(self, num_summands: int) -> float:
        """Per-coordinate bound on |decrypted sum - true sum| of ``num_summands`` fresh ciphertexts.

        Encryption noise (grows as sqrt(n)) plus floating-point encode/decode error.
        """
        return _noise_bound(num_summands, self.poly_modulus_degree, self.scale) + _float_bound(
            num_summands, self.value_bound
        )

    def packed_ciphertext_bytes(self) -> int:
        """Exact size of one ciphertext in a packed envelope: 2 * N * (bits of q) / 8.

        SEAL's primes of b bits have exactly b bits, so the widths are the sizes.
        """
        return 2 * self.poly_modulus_degree * sum(self.coeff_mod_bit_sizes[:-1]) // 8

    def max_ciphertext_bytes(self) -> int:
        """Upper bound on one TenSEAL-serialized ciphertext (a version-1 envelope's payload).

        Uncompressed polynomials plus SEAL's metadata; the packed form is
        :meth:`packed_ciphertext_bytes`, smaller.
        """
        return 2 * self.poly_modulus_degree * self.data_primes * 8 + 1024

    def max_public_context_bytes(self) -> int:
        """Upper bound on a published public context (TenSEAL's serialization).

        Its public key is two polynomials at the key level (every prime, the special one
        included) of N 64-bit words each, uncompressed, plus the encryption parameters,
        the scale and the framing, well under 4 KiB. The server refuses a key holder's
        blob past this bound without parsing it (measured: 35 214 bytes at N = 2048
        against a bound of 69 632; 77 425 at N = 4096 against 135 168).
        """
        return 2 * self.poly_modulus_degree * len(self.coeff_mod_bit_sizes) * 8 + 4096

    def min_public_context_bytes(self) -> int:
        """Lower bound on a published public context: a quarter of its public key's entropy.

        The public key's two polynomials are uniform modulo the key-level modulus, so no
        compression gets them below 2 * N * (total bits) / 8 bytes; a quarter of that
        leaves room for a seeded key (one polynomial and a seed) and still refuses a blob
        too short to hold any public key of these parameters.
        """
        return self.poly_modulus_degree * self.total_bits // 16

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary for the config and the ledger (no key material)."""
        return {
            "scheme": "CKKS",
            "poly_modulus_degree": self.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
            "scale_bits": self.scale_bits,
            "security_bits": self.security_bits,
            "security_bound_bits": max_coeff_modulus_bits(
                self.poly_modulus_degree, self.security_bits
            ),
            "num_clients": self.num_clients,
            "value_bound": self.value_bound,
            "precision": self.precision,
            "error_bound": self.error_bound(self.num_clients),
        }


def _check_design_point(num_clients: int, value_bound: float, precision: float) -> None:
    """Refuse a design point that is not a count and two positive finite reals.

    numpy's numbers are taken (the caller converts them: :func:`_design_point`) and
    bools are not: ``True`` passed as a bound or a precision of 1 (an error of up to 1
    per coordinate), while ``np.float32(1.0)`` was refused as no number at all.
    """
    if (
        isinstance(num_clients, bool)
        or not isinstance(num_clients, numbers.Integral)
        or num_clients < 1
    ):
        raise HEParameterError(f"num_clients must be a positive integer, got {num_clients!r}")
    for name, value in (("value_bound", value_bound), ("precision", precision)):
        if not (
            not isinstance(value, bool)
            and isinstance(value, numbers.Real)
            and math.isfinite(value)
            and value > 0
        ):
            raise HEParameterError(f"{name} must be a positive finite number, got {value!r}")


def _design_point(
    num_clients: int, value_bound: float, precision: float
) -> tuple[int, float, float]:
    """The checked design point as Python numbers.

    Why convert: the overflow and precision checks multiply the bound by the scale, and
    numpy's float32 times a Python float is a float32 product (NEP 50), rounded to 24
    bits, which could pass a modulus a float64 product refuses.
    """
    _check_design_point(num_clients, value_bound, precision)
    return int(num_clients), float(value_bound), float(precision)


def _scale_bits_for(n: int, degree: int, noise_budget: float) -> int:
    """Bits of the smallest power-of-two scale that brings the noise within ``noise_budget``.

    A budget below about 1e-305 makes the quotient overflow to infinity, whose
    ``ceil`` raised OverflowError: the bits are then taken from the logarithms
    (more than any ring has, so the chooser refuses it by name).
    """
    needed = _noise_bound(n, degree, 1.0) / noise_budget
    if math.isinf(needed):
        return math.ceil(math.log2(_noise_bound(n, degree, 1.0)) - math.log2(noise_budget))
    return max(1, math.ceil(math.log2(needed)))


def _scale_bits_meeting(
    n: int, degree: int, value_bound: float, precision: float, noise_budget: float, limit: int
) -> int:
    """Bits of the power-of-two scale the chooser takes: :func:`_scale_bits_for`'s
    estimate, raised to the fewest bits at which :meth:`CKKSParameters.error_bound`,
    computed as the constructor computes it, is within ``precision``.

    :func:`_scale_bits_for` estimates them through a quotient and a ``log2``, each
    rounded: a quotient one ulp above 2^s (524288.0000000001) has a ``log2`` of s
    exactly, so the scale came out one bit short, and the constructor refused the
    chooser's own parameters ("error bound 5.25 for 1 summands exceeds the requested
    precision 5.25" for ``choose_parameters(1, 1e-6, 5.249999999999999)``, which 2^12
    at N = 2048 meets). The estimate is now raised, a bit at a time, until the
    constructor's check holds. It is never lowered: where it already met the check it
    stands as before (a lower one could also meet it at such an edge, and would change
    the parameters of design points that were accepted). Past ``limit - 2`` bits (no ring of
    ``limit`` bits holds that scale, and 2.0**bits overflows past 1023) it is returned
    as it is, for the caller to refuse by name.
    """
    bits = _scale_bits_for(n, degree, noise_budget)

    def meets(scale_bits: int) -> bool:
        error = _noise_bound(n, degree, 2.0**scale_bits) + _float_bound(n, value_bound)
        return error <= precision

    while bits + 2 <= limit and not meets(bits):
        bits += 1
    return bits


def _noise_bound(n: int, degree: int, scale: float) -> float:
    return TAIL_Z * math.sqrt(n) * NOISE_STD_PER_DEGREE * degree / scale


def _float_bound(n: int, value_bound: float) -> float:
    return n * value_bound * FLOAT_RELATIVE_ERROR


def _data_modulus_for(
    degree: int, scale_bits: int, required: float, limit: int
) -> tuple[int, ...] | None:
    """Fewest, then smallest, data-prime sizes (``limit`` bits at most) with product > ``required``.

    ``required`` is 2 * (largest possible decrypted magnitude) * scale; the product
    must also leave room for the scale itself. A ``required`` beyond a float's range
    (a sum of magnitude near 1e308) needs more than 1024 bits: no chain has them.
    """
    if not math.isfinite(required):
        return None
    total = max(math.ceil(math.log2(required)), scale_bits + 2)
    while total <= limit:
        k = math.ceil(total / SEAL_MAX_PRIME_BITS)
        sizes = tuple(total // k + (1 if i < total % k else 0) for i in range(k))
        try:
            q = math.prod(coefficient_primes(degree, sizes))
        except HEParameterError:  # too few primes = 1 mod 2N of this size
            q = 0
        if q > required:
            return sizes
        total += 1
    return None


def _special_prime_bits(degree: int, data_sizes: tuple[int, ...]) -> int:
    """Smallest prime size SEAL can add as the special prime next to these data primes."""
    for bits in range((2 * degree).bit_length(), SEAL_MAX_PRIME_BITS + 1):
        try:
            coefficient_primes(degree, (*data_sizes, bits))
        except HEParameterError:
            continue
        return bits
    raise HEParameterError(f"no special prime for N={degree}")  # pragma: no cover


def choose_parameters(
    num_clients: int, value_bound: float, precision: float, *, security_bits: int = 128
) -> CKKSParameters:
    """Smallest ring and modulus chain for summing ``num_clients`` vectors to ``precision``.

    ``value_bound`` bounds every coordinate of one client's vector (the L2 clip C
    bounds it); ``precision`` is the allowed absolute error of the *sum*, per
    coordinate (for example 1e-6 * C). Raises :class:`HEParameterError` saying which
    constraint failed at the largest ring if no ring satisfies all three.
    """
    num_clients, value_bound, precision = _design_point(num_clients, value_bound, precision)
    if security_bits not in HE_STANDARD_MAX_BITS:
        raise HEParameterError(f"security level must be one of {sorted(HE_STANDARD_MAX_BITS)}")
    noise_budget = precision - _float_bound(num_clients, value_bound)
    if noise_budget <= 0:
        raise HEParameterError(
            f"precision {precision:.3g} is below what double-precision encoding gives for a sum "
            f"of magnitude {num_clients * value_bound:.3g} "
            f"(about {_float_bound(num_clients, value_bound):.3g})"
        )
    reasons: list[str] = []
    for degree in RING_DEGREES:
        limit = HE_STANDARD_MAX_BITS[security_bits][degree]
        scale_bits = _scale_bits_meeting(
            num_clients, degree, value_bound, precision, noise_budget, limit
        )
        if scale_bits + 2 > limit:  # checked first: 2.0**scale_bits overflows past 1023
            reasons.append(
                f"N={degree}: precision {precision:.3g} needs a scale of 2^{scale_bits}, which "
                f"alone needs more than the {limit}-bit bound"
            )
            continue
        required = 2.0 * SLOT_MAGNITUDE * (num_clients * value_bound + precision) * 2.0**scale_bits
        data = _data_modulus_for(degree, scale_bits, required, limit)
        if data is None:
            reasons.append(
                f"N={degree}: scale 2^{scale_bits} and a sum of magnitude "
                f"{num_clients * value_bound:.3g} need more than the {limit}-bit bound"
            )
            continue
        sizes = (*data, _special_prime_bits(degree, data))
        if sum(sizes) > limit:
            reasons.append(
                f"N={degree}: scale 2^{scale_bits} and chain {list(sizes)} need {sum(sizes)} "
                f"bits, the {security_bits}-bit bound is {limit}"
            )
            continue
        return CKKSParameters(
            poly_modulus_degree=degree,
            coeff_mod_bit_sizes=sizes,
            scale_bits=scale_bits,
            num_clients=num_clients,
            value_bound=float(value_bound),
            precision=float(precision),
            security_bits=security_bits,
        )
    raise HEParameterError(
        f"no CKKS ring sums {num_clients} values bounded by {value_bound} to within {precision} "
        f"at {security_bits}-bit security; largest ring: {reasons[-1]}"
    )
