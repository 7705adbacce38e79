/** JSON-schema fragments shared by the routes. Every object schema rejects unknown keys. */
export const id = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;

export const idParams = { type: 'object', properties: { id }, required: ['id'], additionalProperties: false } as const;

export const pagination = {
  limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
  cursor: { type: 'string', minLength: 1, maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' },
} as const;

export const paginationQuery = { type: 'object', properties: pagination, additionalProperties: false } as const;

export const username = { type: 'string', pattern: '^[A-Za-z0-9_-]{3,32}$' } as const;
export const password = { type: 'string', minLength: 8, maxLength: 256 } as const;
export const postBody = { type: 'string', minLength: 1, maxLength: 20_000 } as const;
export const topicTitle = { type: 'string', minLength: 1, maxLength: 200, pattern: '\\S' } as const;
export const namespace = { type: 'string', pattern: '^[A-Z][A-Za-z0-9_]{0,31}$' } as const;
// No slashes or control characters, no leading/trailing space, at most 200 characters.
export const pageTitle = {
  type: 'string',
  minLength: 1,
  maxLength: 200,
  pattern: '^[^/\\u0000-\\u001f\\u007f\\s](?:[^/\\u0000-\\u001f\\u007f]*[^/\\u0000-\\u001f\\u007f\\s])?$',
} as const;

const author = { type: 'object', properties: { id: { type: 'integer' }, username: { type: 'string' } } } as const;

export const topicResponse = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    forumId: { type: 'integer' },
    title: { type: 'string' },
    author,
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    postCount: { type: 'integer' },
  },
} as const;

export const postResponse = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    topicId: { type: 'integer' },
    parentId: { type: ['integer', 'null'] },
    author,
    body: { type: 'string' },
    depth: { type: 'integer' },
    replyCount: { type: 'integer' },
    deleted: { type: 'boolean' },
    edited: { type: 'boolean' },
    createdAt: { type: 'integer' },
    updatedAt: { type: 'integer' },
    threadDepth: { type: 'integer' },
    hasMoreReplies: { type: 'boolean' },
  },
} as const;

export const listOf = (item: object) =>
  ({ type: 'object', properties: { items: { type: 'array', items: item }, nextCursor: { type: ['string', 'null'] } } }) as const;
