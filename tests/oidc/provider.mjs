// A real OpenID provider (npm oidc-provider) for Gantry's OIDC tests, on a loopback port.
//
//   node provider.mjs --port PORT --keys FILE
//
// PORT 0 picks a free port. FILE holds the provider's private JWKS; when it does not exist,
// one RSA (RS256) and one EC P-256 (ES256) key are generated with fresh key ids and written
// there, so a test rotates the provider's keys by restarting it with another file.
//
// Tokens: client credentials grant, client "gantry-test" / secret "gantry-test-secret"
// (client_secret_post or basic), with a resource indicator (RFC 8707): the access token is a
// JWT (RFC 9068) whose aud is the resource, signed with ES256 when the resource ends in "/es"
// and RS256 otherwise, carrying the granted scopes (mcp:tools, gantry:admin) and
// groups ["eng", "ops"]. Its sub is the client id.
//
// Prints one JSON line {"issuer": ..., "kids": [...]} on stdout once it listens.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, fstatSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '0' }, keys: { type: 'string' } },
});
if (!values.keys) {
  console.error('usage: node provider.mjs --port PORT --keys FILE');
  process.exit(2);
}

function freshKeys() {
  const suffix = randomUUID().slice(0, 8);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return {
    keys: [
      { ...rsa, kid: `rsa-${suffix}`, alg: 'RS256', use: 'sig' },
      { ...ec, kid: `ec-${suffix}`, alg: 'ES256', use: 'sig' },
    ],
  };
}

if (!existsSync(values.keys)) writeFileSync(values.keys, JSON.stringify(freshKeys()));
const jwks = JSON.parse(readFileSync(values.keys, 'utf8'));

// Bind first so that port 0 resolves to the issuer's real port.
import { createServer } from 'node:http';
const server = createServer();
await new Promise((resolve) => server.listen(Number(values.port), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'gantry-test',
      client_secret: 'gantry-test-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'mcp:tools gantry:admin',
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  jwks,
  scopes: ['openid', 'mcp:tools', 'gantry:admin'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => ({
        scope: 'mcp:tools gantry:admin',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: resource.endsWith('/es') ? 'ES256' : 'RS256' } },
      }),
    },
  },
  extraTokenClaims: async () => ({ groups: ['eng', 'ops'] }),
});
provider.on('server_error', (_ctx, err) => console.error('provider error:', err));

server.on('request', provider.callback());
console.log(JSON.stringify({ issuer, kids: jwks.keys.map((k) => k.kid) }));

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
// Exit with the test that started us when it holds our stdin as a pipe (its end closes);
// started with stdin from /dev/null, run until a signal.
if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
