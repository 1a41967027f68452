// Verifies a journeygate X-Identity-Assertion the way a backend would, with an independent
// library (npm `jose`): the gateway's JWKS, ES256 only, the expected audience, a short lifetime.
//   node verify-assertion.mjs JWKS_URL AUDIENCE TOKEN   -> prints the claims as JSON, exit 0; or exit 1
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [jwksUrl, audience, token] = process.argv.slice(2);
try {
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, {
    algorithms: ['ES256'], audience, maxTokenAge: '60s', requiredClaims: ['exp', 'iat', 'customer_id'],
  });
  console.log(JSON.stringify({ header: protectedHeader, claims: payload }));
} catch (e) {
  console.log(JSON.stringify({ error: e.code || String(e) }));
  process.exitCode = 1;
}
