// Signs and verifies the mesh's own JWTs with workload identities: the signer uses the current SVID's
// key (read through a function at every use, so a renewed certificate is picked up) and puts the
// certificate chain in `x5c`; the verifier checks that chain against the current bundle. No I/O.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { MeshError } from '../../sdk/errors.ts';
import { svidRefusal, uriSans, type Identity } from '../identity/index.ts';

/** The algorithms a workload key signs with (by key type); the verifier accepts only these. */
const WORKLOAD_ALGORITHMS = ['ES256', 'ES384', 'PS256', 'EdDSA'];
const MAX_X5C = 4;
const MAX_CACHED = 1000;

interface SigningKey {
  certPem: string;
  key: KeyObject;
  alg: string;
  x5c: string[];
}

interface VerifiedCert {
  id: string;
  key: KeyObject;
  notBefore: number;
  notAfter: number;
}

export class WorkloadSigner {
  readonly #identity: () => Identity;
  #signing: SigningKey | undefined;
  /** Verified leaf certificates by their x5c entry, for the bundle they were checked against. */
  readonly #verified = new Map<string, VerifiedCert>();
  #bundlePem = '';
  #roots: X509Certificate[] = [];

  constructor(identity: () => Identity) {
    this.#identity = identity;
  }

  get id(): string {
    return this.#identity().id;
  }

  get trustDomain(): string {
    return this.#identity().trustDomain;
  }

  /** A compact JWS of `payload` with `typ`, signed by this workload, its chain in x5c. */
  async sign(payload: JWTPayload, typ: string, ttlS: number): Promise<string> {
    const signing = this.#signingKey();
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT(payload)
      .setProtectedHeader({ alg: signing.alg, typ, x5c: signing.x5c })
      .setIssuer(this.id).setIssuedAt(now).setExpirationTime(now + ttlS)
      .sign(signing.key);
  }

  /**
   * Verifies a token this mesh signed: the x5c chain against the bundle, then signature, typ, audience
   * and expiry. Returns the payload and the signer's SPIFFE ID; UNAUTHENTICATED naming what failed.
   */
  async verify(token: string, options: { typ: string; audience: string; maxTtlS: number }): Promise<{ payload: JWTPayload; signer: string }> {
    let signer = '';
    try {
      const { payload } = await jwtVerify(token, (header) => {
        const cert = this.#leaf(header.x5c);
        signer = cert.id;
        return cert.key;
      }, { algorithms: WORKLOAD_ALGORITHMS, typ: options.typ, audience: options.audience, requiredClaims: ['exp', 'iat', 'jti', 'iss'], clockTolerance: 5, maxTokenAge: options.maxTtlS + 5 });
      if (payload.iss !== signer) throw new MeshError('UNAUTHENTICATED', `delegation chain refused: issued as ${String(payload.iss)} but signed by ${signer}`);
      return { payload, signer };
    } catch (err) {
      if (err instanceof MeshError) throw err;
      throw new MeshError('UNAUTHENTICATED', `delegation chain refused: ${joseReason(err)}`, { cause: err });
    }
  }

  #signingKey(): SigningKey {
    const identity = this.#identity();
    if (this.#signing?.certPem === identity.certPem) return this.#signing;
    const key = createPrivateKey(identity.keyPem);
    const certs = identity.certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    const x5c = certs.slice(0, MAX_X5C).map((pem) => new X509Certificate(pem).raw.toString('base64'));
    this.#signing = { certPem: identity.certPem, key, alg: algorithmFor(key), x5c };
    return this.#signing;
  }

  /** The leaf of an x5c chain, verified against the current bundle (cached per leaf and bundle). */
  #leaf(x5c: unknown): VerifiedCert {
    if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_X5C || !x5c.every((c) => typeof c === 'string' && c.length < 16_384)) {
      throw new MeshError('UNAUTHENTICATED', 'delegation chain refused: the x5c header must hold 1-4 certificates');
    }
    const bundle = this.#identity().bundlePem;
    if (bundle !== this.#bundlePem) {
      this.#bundlePem = bundle;
      this.#roots = (bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((pem) => new X509Certificate(pem));
      this.#verified.clear();
    }
    const leafB64 = x5c[0] as string;
    let cert = this.#verified.get(leafB64);
    if (!cert) {
      cert = this.#check(x5c as string[]);
      if (this.#verified.size >= MAX_CACHED) this.#verified.clear();
      this.#verified.set(leafB64, cert);
    }
    const now = Date.now();
    if (now < cert.notBefore || now > cert.notAfter) throw new MeshError('UNAUTHENTICATED', `delegation chain refused: the signer's certificate ${cert.id} is not valid now`);
    return cert;
  }

  #check(x5c: string[]): VerifiedCert {
    const fail = (why: string): never => { throw new MeshError('UNAUTHENTICATED', `delegation chain refused: ${why}`); };
    let certs: X509Certificate[] = [];
    try {
      certs = x5c.map((b64) => new X509Certificate(Buffer.from(b64, 'base64')));
    } catch {
      fail('an x5c entry is not a certificate');
    }
    const [leaf, ...intermediates] = certs;
    if (!leaf) return fail('empty x5c');
    const refused = svidRefusal(leaf.raw);
    if (refused) fail(`the signer's certificate is not a valid X509-SVID: ${refused}`);
    const uris = uriSans(leaf.subjectAltName);
    const id = uris.length === 1 ? uris[0] : undefined;
    if (id === undefined || !id.startsWith(`spiffe://${this.trustDomain}/`)) fail(`the signer is not a workload of trust domain ${this.trustDomain}`);
    let current = leaf;
    for (let depth = 0; depth <= intermediates.length; depth++) {
      if (this.#roots.some((root) => current.checkIssued(root) && current.verify(root.publicKey))) {
        return { id: id ?? '', key: leaf.publicKey, notBefore: Date.parse(leaf.validFrom), notAfter: Date.parse(leaf.validTo) };
      }
      const issuer = intermediates.find((i) => current.checkIssued(i) && current.verify(i.publicKey) && i.ca);
      if (!issuer) break;
      current = issuer;
    }
    return fail(`the signer's certificate ${id ?? ''} does not chain to the trust bundle`);
  }
}

function algorithmFor(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === 'ec') return key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES384' : 'ES256';
  if (type === 'rsa' || type === 'rsa-pss') return 'PS256';
  if (type === 'ed25519') return 'EdDSA';
  throw new MeshError('IDENTITY_INVALID', `identity.key: a ${String(type)} key cannot sign delegation chains`);
}

/** jose's error as words for a caller: its code and claim, never the token. */
export function joseReason(err: unknown): string {
  const e = err as { code?: unknown; claim?: unknown; reason?: unknown; message?: unknown };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED': return 'the token has expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': return `claim '${String(e.claim)}' check failed (${String(e.reason)})`;
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'the token\'s signature algorithm is not allowed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'the signature does not verify (was the token edited?)';
    case 'ERR_JWS_INVALID': case 'ERR_JWT_INVALID': return 'not a well-formed signed JWT';
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'no key in the JWKS matches the token (kid/alg)';
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS': return 'several keys in the JWKS match the token; it needs a kid';
    case 'ERR_JOSE_NOT_SUPPORTED': return 'the token uses an unsupported algorithm or key';
    default: return typeof e.code === 'string' ? `token refused (${e.code})` : 'token refused';
  }
}
