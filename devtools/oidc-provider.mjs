// A real OpenID provider for the test suite and the demo: npm oidc-provider on 127.0.0.1, with its
// development login pages (any login name becomes the subject; the password is not checked).
//   node devtools/oidc-provider.mjs --client-id ID --client-secret S --redirect-uri URI [--redirect-uri URI2]
// Prints one JSON line {"ready": true, "issuer": ..., "port": ...} on stdout once listening.
import http from "node:http";
import Provider from "oidc-provider";

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const all = (name) => args.flatMap((a, i) => (a === name ? [args[i + 1]] : []));

const clientId = opt("--client-id") || "broadsheet";
const clientSecret = opt("--client-secret") || "s3cret";
const redirectUris = all("--redirect-uri");

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    }],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "preferred_username"] },
    scopes: ["openid", "email", "profile"],
    cookies: { keys: ["test-only-not-a-secret"] },
    conformIdTokenClaims: true,
    ttl: {
      AccessToken: () => 600, AuthorizationCode: () => 60, Grant: () => 600, IdToken: () => 600,
      Interaction: () => 600, Session: () => 600,
    },
    async findAccount(ctx, sub) {
      // "alice" has an unverified address; "alice+verified" a verified one.
      const login = String(sub);
      const local = login.replace(/\+verified$/, "");
      return {
        accountId: login,
        async claims() {
          return {
            sub: login,
            email: `${local}@example.test`,
            email_verified: login.endsWith("+verified"),
            name: process.env.OP_NAME_CLAIM || `${local[0].toUpperCase()}${local.slice(1)} Example`,
            preferred_username: local,
          };
        },
      };
    },
  });
  provider.proxy = false;
  server.on("request", provider.callback());
  process.stdout.write(JSON.stringify({ ready: true, issuer, port }) + "\n");
});

function stop() {
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// --exit-with-parent: the demo's server replaces its own process; stop when it is gone.
if (args.includes("--exit-with-parent")) {
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) stop(); }, 1000).unref();
}
