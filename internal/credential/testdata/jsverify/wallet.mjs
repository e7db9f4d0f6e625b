// What the Learner Credential Wallet's verifier (@digitalcredentials/
// verifier-core) says about certd's credentials. Usage: node wallet.mjs
// manifest.json, with the manifest of verify.mjs plus
//   "web": {"<https URL>": "<file>"}   // what the verifier fetches
// The verifier fetches the issuer's did:web document, the status list, the
// issuer registries and the OB JSON schema over HTTPS; here fetch is
// replaced so that the URLs in "web" are served from files and everything
// else gets a 404 (no network). Prints {"results": [{file, log, error}]}:
// log is the verifier's list of {id, valid} checks.
import {readFileSync} from 'node:fs';
import {dirname, resolve} from 'node:path';

const manifestPath = process.argv[2];
if(!manifestPath) {
  console.error('usage: node wallet.mjs manifest.json');
  process.exit(2);
}
const base = dirname(resolve(manifestPath));
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const web = manifest.web || {};

globalThis.fetch = async input => {
  const url = typeof input === 'string' ? input : (input.url || String(input));
  if(web[url]) {
    return new Response(readFileSync(resolve(base, web[url])), {
      status: 200, headers: {'content-type': 'application/json'}
    });
  }
  return new Response('{}', {status: 404, headers: {'content-type': 'application/json'}});
};
// The verifier logs schema fetch failures to the console; keep stdout JSON.
console.log = () => {};
console.error = () => {};
console.warn = () => {};

const {verifyCredential} = await import('@digitalcredentials/verifier-core');
const out = {results: []};
for(const file of manifest.credentials || []) {
  const r = {file, log: [], error: ''};
  try {
    const credential = JSON.parse(readFileSync(resolve(base, file), 'utf8'));
    const result = await verifyCredential({
      credential, knownDIDRegistries: [], reloadIssuerRegistry: false
    });
    r.log = (result.log || []).map(({id, valid}) => ({id, valid}));
    if(result.errors) {
      r.error = result.errors.map(e => e.message || String(e)).join('; ');
    }
  } catch(e) {
    r.error = e.message || String(e);
  }
  out.results.push(r);
}
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
