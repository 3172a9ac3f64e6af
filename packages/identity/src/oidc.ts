import * as client from 'openid-client';
import { badRequest, unauthorized, type Config } from '@imago/core';
import type { Identity, UserView } from './identity.js';

export type OidcConfig = NonNullable<Config['auth']['oidc']>;

interface PendingLogin {
  codeVerifier: string;
  nonce: string;
  returnTo: string;
  createdAt: number;
}

/**
 * OpenID Connect login (authorization code + PKCE) through openid-client.
 * Users are matched by subject; a first login provisions the user when the ID
 * token carries Imago roles in `rolesClaim` as `role@ORGCODE` (or `role` for a
 * national role). Without roles a first login is refused: deny by default.
 */
export class OidcLogin {
  private config?: client.Configuration;
  private readonly pending = new Map<string, PendingLogin>();

  constructor(
    private readonly cfg: OidcConfig,
    private readonly identity: Identity,
    private readonly redirectUri: string,
    private readonly opts: { allowInsecure?: boolean } = {},
  ) {}

  private async discover(): Promise<client.Configuration> {
    if (!this.config) {
      const issuer = new URL(this.cfg.issuer);
      const insecure = this.opts.allowInsecure ?? issuer.protocol === 'http:';
      this.config = await client.discovery(
        issuer,
        this.cfg.clientId,
        { redirect_uris: [this.redirectUri], response_types: ['code'] },
        this.cfg.clientSecret ? client.ClientSecretBasic(this.cfg.clientSecret) : client.None(),
        insecure ? { execute: [client.allowInsecureRequests] } : {},
      );
    }
    return this.config;
  }

  /** Begin a login; returns the provider URL and the state to bind in a cookie. */
  async begin(returnTo = '/'): Promise<{ url: string; state: string }> {
    const config = await this.discover();
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    this.gc();
    this.pending.set(state, { codeVerifier, nonce, returnTo: returnTo.startsWith('/') && !returnTo.startsWith('//') ? returnTo : '/', createdAt: Date.now() });
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url: url.toString(), state };
  }

  /** Finish a login from the callback URL; returns the Imago session. */
  async complete(callbackUrl: URL, stateFromCookie: string | undefined, ip: string | null): Promise<{ sessionToken: string; expiresAt: string; user: UserView; returnTo: string }> {
    const state = callbackUrl.searchParams.get('state');
    if (!state || !stateFromCookie || state !== stateFromCookie) throw badRequest('OIDC state mismatch');
    const p = this.pending.get(state);
    if (!p) throw badRequest('OIDC login expired; start again');
    this.pending.delete(state);
    const config = await this.discover();
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: p.codeVerifier, expectedNonce: p.nonce, expectedState: state, idTokenExpected: true });
    const idClaims = tokens.claims();
    if (!idClaims) throw unauthorized('OIDC provider returned no ID token');
    const sub = String(idClaims.sub);
    let claims: Record<string, unknown> = { ...idClaims };
    // Providers that follow the core spec strictly put profile claims only in
    // UserInfo; merge them (the subject must match, which openid-client checks).
    if (claims[this.cfg.rolesClaim] === undefined && config.serverMetadata().userinfo_endpoint) {
      const info = await client.fetchUserInfo(config, tokens.access_token, sub);
      claims = { ...info, ...claims };
    }
    const user = await this.identity.userForOidc(sub, claims, this.cfg.rolesClaim);
    const s = await this.identity.createSession(user.id, ip, 'oidc');
    return { ...s, returnTo: p.returnTo };
  }

  private gc(): void {
    const cutoff = Date.now() - 10 * 60_000;
    for (const [k, v] of this.pending) if (v.createdAt < cutoff) this.pending.delete(k);
  }
}
