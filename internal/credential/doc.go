// Package credential issues and checks certd's portable credentials: an
// Open Badges 3.0 OpenBadgeCredential (W3C VC Data Model 2.0) beside every
// certificate PDF, secured with a Data Integrity proof of cryptosuite
// eddsa-rdfc-2022, issued by a did:web (or did:key) identifier whose
// Ed25519 key is the credential key (never the OpenPGP key).
//
// Invariants:
//   - Every JSON-LD context is pinned and embedded (contexts/, see
//     contexts/NOTICE.md); the document loader refuses every other URL and
//     never opens a connection.
//   - Nothing is signed whose JSON-LD expansion or RDF conversion would drop
//     anything (a term no context defines, a type or id that is not an
//     absolute IRI, an IRI json-gold deems invalid): Sign fails with
//     ErrDropped, so certd never signs less than the JSON shows.
//   - Canonicalization is RDFC-1.0 (json-gold's URDNA2015); the proof value
//     is 'z' + base58btc(Ed25519(sha256(canonical proof config carrying the
//     document's @context) || sha256(canonical document))). The W3C
//     vc-di-eddsa vectors are reproduced byte for byte (vectors_test.go).
//   - A Suite is safe for concurrent use and caches processed top-level
//     contexts (at most 32 @context lists) and IRI checks (at most 4096).
//
// Issuing, per certificate:
//
//	suite, _ := credential.NewSuite()                       // once per process
//	key, created, _ := credential.LoadOrCreateKey(path)     // or LoadKeyFile
//	did, _ := credential.DIDWeb("https://certs.example.org/") // or DIDKey(pub)
//	signer := credential.Signer{Key: key, VerificationMethod: did + "#key-1"}
//	idx, _ := store.Allocate(ctx, "1")                      // statuslist.Store
//	vc, _ := suite.IssueOpenBadge(credential.Badge{...,
//	    PDFDigestSRI: credential.DigestSRI(pdf),
//	    Status: &credential.StatusEntry{ListURL: listURL, Index: idx}}, signer, time.Now())
//
// Publishing: NewDIDDocument(did, keys, now).JSON() at DIDWebDocumentPath(did);
// for did:key (DIDKeyVerificationMethod) there is nothing to publish.
// Checking: Suite.Check gives VALID, REVOKED, EXPIRED, TAMPERED or WRONG KEY.
package credential
