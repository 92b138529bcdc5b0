// Package he is the homomorphic half of the enclave: several providers'
// columns encrypted under one collective key, encrypted aggregates computed
// by the host, DP noise added under encryption, and a release that every
// provider must agree to, re-encrypted to the operator's own key. It is
// built on lattigo v6 (CKKS for reals, BGV for exact integers) and its
// multiparty package (N-out-of-N keys).
//
// # Parties and calls
//
//   - Providers (key holders): NewProvider keeps a secret share on the
//     provider's side (MarshalSecret/LoadProvider to store it);
//     KeygenShare contributes to the collective keys for a Setup agreed
//     publicly (parameters, providers, a seed for the common reference
//     string); NewEncryptor(keys).EncryptFloats / EncryptInts encrypt a
//     column (values clamped to public bounds); ReleaseShare gives a share of
//     a key switch, only for an approved release, once per ciphertext.
//   - The host (aggregator): CollectiveKeys builds the public and Galois keys
//     from every provider's share; NewEvaluator(keys).Aggregate computes per
//     group Σ wᵢ·xᵢ (Sum, Count, Mean, WeightedSum) from plaintext weights the
//     guest derived from public columns; Add fuses providers' aggregates;
//     AddNoise adds google DP noise under encryption; NewShareRequest and
//     ShareRequest.Combine run the collective public-key switch.
//   - The operator (SDK): NewOperator draws its key pair; Open decrypts a
//     release with DecodePublic; EncryptQuery / OpenReply wrap a vector the
//     platform never sees, which EvaluateQuery applies to public data after
//     noising it in the clear (a DP release whatever the vector).
//
// # Threat model
//
// lattigo promises IND-CPA security, against passive (honest-but-curious)
// parties; there are no proofs that shares are well formed, so a provider or
// host that deviates from the protocol is out of scope. Keys are N-out-of-N:
// decryption needs every provider, so the data stays confidential unless all
// providers collude. What each party sees:
//
//   - A provider: its own secret share and data, the public keys, the public
//     seed, ciphertexts, share requests (ciphertext, recipient key, job).
//     It never sees another provider's data or any aggregate in the clear.
//   - The host: public keys, encrypted columns, the public weights, encrypted
//     aggregates and the DP noise values it drew (it discards them); key
//     switch shares, which are flooded. It cannot decrypt anything.
//   - The operator: the released values, each with DP noise and rounded by
//     DecodePublic, and the noise parameters; nothing of the un-noised
//     aggregate. Its query vector stays under its own key.
//   - The public (ledger readers): job ids, ciphertext and key hashes.
//
// CKKS decryptions leak key-dependent noise when shared (Li–Micciancio): the
// key switch floods each share with Gaussian noise 2^FloodBits times a bound
// on the ciphertext's own noise (measured by TestNoiseBound), and the
// operator decodes only with DecodePublic at a precision no finer than the
// flooding (TestNoReleasePathCallsDecode). No protocol runs twice on the same
// randomness: a provider gives one keygen share per setup and one key-switch
// share per ciphertext (ShareLog), each request carries a fresh session id,
// and every share draws fresh randomness. Timing and memory side channels
// are out of scope; the DP guarantee assumes one row per privacy unit and
// weights from public columns only.
//
// # Concurrency
//
// Params, PublicKeys, Provider and the ShareLog implementations are safe for
// concurrent use. Encryptor, Evaluator and Operator are not: make one per
// goroutine.
package he
