// The X509-SVID rules for a leaf (SPIFFE X509-SVID §4, DESIGN "Trust model"): why a certificate may not
// act as a workload identity, read from its DER with a small reader (no ASN.1 library on the request path).
// Pure; callers cache the verdict (peerSvidRefusal does, per certificate fingerprint).
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from './spiffe.ts';

/** The longest SPIFFE ID the SPIFFE spec lets a certificate carry, in bytes. */
export const MAX_SPIFFE_ID_BYTES = 2048;

const OID_KEY_USAGE = '551d0f';
const OID_SAN = '551d11';
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_EXT_KEY_USAGE = '551d25';
const OID_SERVER_AUTH = '2b06010505070301';
const OID_CLIENT_AUTH = '2b06010505070302';
/** KeyUsage bits in the first content byte of the BIT STRING (bit 0 is 0x80). */
const KU_DIGITAL_SIGNATURE = 0x80;
const KU_KEY_CERT_SIGN = 0x04;
const KU_CRL_SIGN = 0x02;

/**
 * Why `der` (one certificate, DER) is not an acceptable X509-SVID leaf, or undefined when it is:
 * exactly one URI SAN, a SPIFFE ID with a path, at most 2048 bytes; CA=false; keyUsage present with
 * digitalSignature and without keyCertSign or cRLSign; extendedKeyUsage with serverAuth and clientAuth.
 */
export function svidRefusal(der: Uint8Array): string | undefined {
  let extensions: Map<string, Uint8Array>;
  try {
    extensions = readExtensions(der);
  } catch (err) {
    return `the certificate cannot be read (${(err as Error).message})`;
  }
  return sanRefusal(extensions.get(OID_SAN))
    ?? basicConstraintsRefusal(extensions.get(OID_BASIC_CONSTRAINTS))
    ?? keyUsageRefusal(extensions.get(OID_KEY_USAGE))
    ?? extKeyUsageRefusal(extensions.get(OID_EXT_KEY_USAGE));
}

const MAX_CACHED = 1024;
/** Verdicts per certificate fingerprint ('' = accepted): a certificate is read once, not per connection. */
const verdicts = new Map<string, string>();

/** svidRefusal for a peer certificate as node:tls reports it, cached by its SHA-256 fingerprint. */
export function peerSvidRefusal(cert: PeerCertificate): string | undefined {
  const known = verdicts.get(cert.fingerprint256);
  if (known !== undefined) return known === '' ? undefined : known;
  const why = cert.raw ? svidRefusal(cert.raw) : 'no certificate presented';
  if (verdicts.size >= MAX_CACHED) verdicts.delete(verdicts.keys().next().value ?? '');
  verdicts.set(cert.fingerprint256, why ?? '');
  return why;
}

function sanRefusal(value: Uint8Array | undefined): string | undefined {
  if (!value) return 'it has no subjectAltName (an X509-SVID has exactly one URI SAN)';
  const uris: string[] = [];
  const names = expect(value, 0, 0x30, 'subjectAltName');
  for (const name of children(value, names.start, names.end)) {
    if (name.tag === 0x86) uris.push(Buffer.from(value.subarray(name.start, name.end)).toString('latin1'));
  }
  const [uri] = uris;
  if (uris.length !== 1 || uri === undefined) return `it has ${uris.length} URI SANs (an X509-SVID has exactly one)`;
  if (Buffer.byteLength(uri) > MAX_SPIFFE_ID_BYTES) return `its SPIFFE ID is ${Buffer.byteLength(uri)} bytes long (at most ${MAX_SPIFFE_ID_BYTES})`;
  try {
    if (parseSpiffeId(uri).path === '') return `its URI SAN '${uri}' names a trust domain, not a workload (no path)`;
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

function basicConstraintsRefusal(value: Uint8Array | undefined): string | undefined {
  if (!value) return undefined; // absent means CA=false
  const seq = expect(value, 0, 0x30, 'basicConstraints');
  const [first] = children(value, seq.start, seq.end);
  const isCa = first?.tag === 0x01 && first.end > first.start && value[first.start] !== 0;
  return isCa ? 'it is a CA certificate (basicConstraints CA=true)' : undefined;
}

function keyUsageRefusal(value: Uint8Array | undefined): string | undefined {
  if (!value) return 'it has no keyUsage extension (digitalSignature is required)';
  const bits = expect(value, 0, 0x03, 'keyUsage');
  const first = bits.end - bits.start >= 2 ? value[bits.start + 1] ?? 0 : 0;
  if (first & KU_KEY_CERT_SIGN) return 'its keyUsage includes keyCertSign';
  if (first & KU_CRL_SIGN) return 'its keyUsage includes cRLSign';
  if (!(first & KU_DIGITAL_SIGNATURE)) return 'its keyUsage lacks digitalSignature';
  return undefined;
}

function extKeyUsageRefusal(value: Uint8Array | undefined): string | undefined {
  if (!value) return 'it has no extendedKeyUsage (serverAuth and clientAuth are required)';
  const seq = expect(value, 0, 0x30, 'extendedKeyUsage');
  const oids = new Set(children(value, seq.start, seq.end).filter((c) => c.tag === 0x06).map((c) => hex(value, c.start, c.end)));
  const missing = [oids.has(OID_SERVER_AUTH) ? '' : 'serverAuth', oids.has(OID_CLIENT_AUTH) ? '' : 'clientAuth'].filter(Boolean);
  return missing.length > 0 ? `its extendedKeyUsage lacks ${missing.join(' and ')}` : undefined;
}

interface Tlv {
  tag: number;
  /** Content start and end (exclusive) in the buffer. */
  start: number;
  end: number;
}

/** Extension OID (hex of its content bytes) → extnValue contents; a duplicated extension is refused. */
function readExtensions(der: Uint8Array): Map<string, Uint8Array> {
  const cert = expect(der, 0, 0x30, 'Certificate');
  const tbs = expect(der, cert.start, 0x30, 'TBSCertificate');
  const out = new Map<string, Uint8Array>();
  const wrapper = children(der, tbs.start, tbs.end).find((c) => c.tag === 0xa3);
  if (!wrapper) return out;
  const list = expect(der, wrapper.start, 0x30, 'Extensions');
  for (const ext of children(der, list.start, list.end)) {
    const parts = children(der, ext.start, ext.end);
    const oid = parts[0];
    const value = parts[parts.length - 1];
    if (oid?.tag !== 0x06 || value?.tag !== 0x04) throw new Error('malformed extension');
    const key = hex(der, oid.start, oid.end);
    if (out.has(key)) throw new Error('an extension appears twice');
    out.set(key, der.subarray(value.start, value.end));
  }
  return out;
}

function children(buf: Uint8Array, start: number, end: number): Tlv[] {
  const out: Tlv[] = [];
  for (let at = start; at < end;) {
    const tlv = readTlv(buf, at, end);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

function expect(buf: Uint8Array, at: number, tag: number, what: string): Tlv {
  const tlv = readTlv(buf, at, buf.length);
  if (tlv.tag !== tag) throw new Error(`malformed ${what}`);
  return tlv;
}

/** One DER TLV at `at` (single-byte tags, definite lengths up to 4 bytes), bounded by `limit`. */
function readTlv(buf: Uint8Array, at: number, limit: number): Tlv {
  const tag = buf[at];
  let lengthByte = buf[at + 1];
  if (tag === undefined || lengthByte === undefined || (tag & 0x1f) === 0x1f) throw new Error('truncated DER');
  let start = at + 2;
  let length = lengthByte;
  if (lengthByte & 0x80) {
    const count = lengthByte & 0x7f;
    if (count === 0 || count > 4) throw new Error('unsupported DER length');
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = buf[start + i];
      if (lengthByte === undefined) throw new Error('truncated DER');
      length = length * 256 + lengthByte;
    }
    start += count;
  }
  const end = start + length;
  if (end > limit) throw new Error('truncated DER');
  return { tag, start, end };
}

function hex(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('hex');
}
