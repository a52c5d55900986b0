/**
 * The credentials /config.json hands out against a real coturn (`use-auth-secret`):
 * accepted while valid; a forged password, a credential signed with another secret and
 * an expired one (signed right) are refused. Proves our scheme is the one coturn checks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iceSettingsFromEnv, turnCredential } from './ice';
import { startSignalingServer, type SignalingServer } from './server';
import { startTurn, type TurnService } from './services';
import { tryAllocate } from './turn-client';

describe('TURN credentials against coturn', () => {
  let turn: TurnService;
  let server: SignalingServer;

  beforeAll(async () => {
    turn = await startTurn();
    server = await startSignalingServer({
      port: 0,
      staticDir: null,
      log: () => undefined,
      ice: iceSettingsFromEnv({ ICE_SERVERS: '[]', TURN_URLS: turn.url, TURN_SECRET: turn.secret, TURN_TTL: '300' }),
    });
  });
  afterAll(async () => {
    await server?.close();
    await turn?.stop();
  });

  const served = async (): Promise<{ username: string; credential: string }> => {
    const body = (await (await fetch(`${server.url}config.json`)).json()) as { iceServers: { username: string; credential: string }[] };
    return body.iceServers[0]!;
  };

  it('accepts the credential the server hands out', async () => {
    const { username, credential } = await served();
    expect(await tryAllocate('127.0.0.1', turn.port, username, credential)).toEqual({ ok: true, error: null });
  });

  it('refuses a forged password', async () => {
    const { username, credential } = await served();
    const forged = Buffer.from(credential, 'base64');
    forged[0] = forged[0]! ^ 0xff;
    expect(await tryAllocate('127.0.0.1', turn.port, username, forged.toString('base64'))).toEqual({ ok: false, error: 401 });
  });

  it('refuses a credential signed with another secret', async () => {
    const { username, credential } = turnCredential('not-the-secret', 300, Date.now() / 1000, 'mallory');
    expect(await tryAllocate('127.0.0.1', turn.port, username, credential)).toEqual({ ok: false, error: 401 });
  });

  it('refuses an expired credential, even though it is signed with the right secret', async () => {
    const { username, credential } = turnCredential(turn.secret, 300, Date.now() / 1000 - 301, 'late');
    expect(await tryAllocate('127.0.0.1', turn.port, username, credential)).toEqual({ ok: false, error: 401 });
    // the same user one second before expiry still works: the check is the expiry time
    const fresh = turnCredential(turn.secret, 300, Date.now() / 1000 - 290, 'late');
    expect(await tryAllocate('127.0.0.1', turn.port, fresh.username, fresh.credential)).toEqual({ ok: true, error: null });
  });
});
