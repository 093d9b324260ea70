import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal, Scope } from '../../src/auth/principal.js';
import { anonymousAdmin } from '../../src/auth/principal.js';
import { ErrorCode, GantryError, errors } from '../../src/errors.js';
import { forModel, inCallersTerms, requestedModel } from '../../src/inference/requested-model.js';

const acme: Principal = { tenant: 'acme', keyId: 'k1', scopes: new Set<Scope>(['infer', 'models:read']) };
const acmeNarrow: Principal = { ...acme, keyId: 'k2', models: new Set(['shared']) };

function thrown(run: () => unknown): GantryError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GantryError);
    return error;
  }
  assert.fail('expected a throw');
}

describe('requestedModel', () => {
  test("a tenant's bare name resolves inside its tenant and is shown bare", () => {
    assert.deepEqual(requestedModel(acme, 'shared'), { qualified: 'acme~shared', asWritten: 'shared', shown: 'shared' });
  });

  test("another tenant's qualified name is not found (404, never 403), named as written", () => {
    const error = thrown(() => requestedModel(acme, 'globex~shared'));
    assert.equal(error.code, ErrorCode.NotFound);
    assert.equal(error.message, "Unknown model 'globex~shared'.");
    // The same answer as for a tenant that does not exist.
    assert.equal(thrown(() => requestedModel(acme, 'nobody~shared')).message, "Unknown model 'nobody~shared'.");
  });

  test('a name outside the key’s allow-list is not found; a listed one resolves', () => {
    assert.equal(thrown(() => requestedModel(acmeNarrow, 'other')).code, ErrorCode.NotFound);
    assert.equal(requestedModel(acmeNarrow, 'shared').qualified, 'acme~shared');
  });

  test('the admin addresses any tenant’s model by its qualified name and is shown that name; its own are bare', () => {
    assert.deepEqual(requestedModel(anonymousAdmin, 'acme~shared'), { qualified: 'acme~shared', asWritten: 'acme~shared', shown: 'acme~shared' });
    assert.deepEqual(requestedModel(anonymousAdmin, 'mlp'), { qualified: 'mlp', asWritten: 'mlp', shown: 'mlp' });
  });

  test('malformed names are 400 for everyone', () => {
    for (const name of ['', 'a b', 'default~m', 'Acme~m', 'acme~', '~m']) {
      assert.equal(thrown(() => requestedModel(anonymousAdmin, name)).code, ErrorCode.InvalidArgument, name);
    }
  });
});

describe('inCallersTerms', () => {
  const model = requestedModel(acme, 'shared');

  test('an error naming the qualified model names it as written, with the same code and Retry-After', () => {
    const reworded = inCallersTerms(errors.noReadyVersion('acme~shared'), model) as GantryError;
    assert.equal(reworded.message, "Model 'shared' has no READY version yet.");
    assert.equal(reworded.code, ErrorCode.Unavailable);
    assert.equal(reworded.retryAfterSeconds, 1);
    const twice = inCallersTerms(new GantryError(ErrorCode.ResourceExhausted, "Model 'acme~shared' is full; 'acme~shared' waits."), model) as GantryError;
    assert.equal(twice.message, "Model 'shared' is full; 'shared' waits.");
  });

  test('other errors pass unchanged', () => {
    const unrelated = errors.invalidArgument("Input 'a' is wrong.");
    assert.equal(inCallersTerms(unrelated, model), unrelated);
    const plain = new Error("model 'acme~shared'");
    assert.equal(inCallersTerms(plain, model), plain);
    // An unquoted mention is not a model name in a message Gantry wrote.
    const unquoted = errors.invalidArgument('acme~shared');
    assert.equal(inCallersTerms(unquoted, model), unquoted);
  });

  test('forModel rewords what its work throws and returns what it returns', async () => {
    assert.equal(await forModel(model, async () => 7), 7);
    await assert.rejects(
      forModel(model, async () => {
        throw errors.modelNotFound('acme~shared', '3');
      }),
      { message: "Unknown version '3' of model 'shared'." },
    );
  });
});
