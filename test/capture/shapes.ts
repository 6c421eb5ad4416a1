import {
  ChildEntity,
  Column,
  CreateDateColumn,
  DefaultNamingStrategy,
  DeleteDateColumn,
  Entity,
  JoinColumn,
  JoinTable,
  ManyToMany,
  ManyToOne,
  OneToMany,
  PrimaryColumn,
  PrimaryGeneratedColumn,
  RelationId,
  TableInheritance,
  Tree,
  TreeChildren,
  TreeParent,
  UpdateDateColumn,
  VersionColumn,
  type NamingStrategyInterface,
  type ObjectLiteral,
} from 'typeorm';

export type Dialect = 'sqlite' | 'postgres' | 'mysql';

/**
 * One kind of entity as apps declare them, and how the write paths address its rows: `make(i)` is row i,
 * `criteria(i)` finds exactly row i through the shape's tricky property paths, `change(i)` alters it.
 */
export interface Shape {
  name: string;
  /** Every entity the shape's DataSource needs (the marker table is added by the suite). */
  entities: Array<new () => object>;
  /** The entity the write paths use. */
  target: new () => object;
  namingStrategy?: NamingStrategyInterface;
  /** Rows other entities need before the write paths run (categories, bikes beside the cars). */
  seed?: Array<{ target: new () => object; rows: ObjectLiteral[] }>;
  make(i: number): ObjectLiteral;
  criteria(i: number): ObjectLiteral;
  change(i: number): ObjectLiteral;
  /** A query-builder WHERE with parameters, written with property paths, that finds row i. */
  where: { sql: string; params(i: number): ObjectLiteral };
  /** A top-level string property whose value `text(i)` names row i (for WHEREs that read another table). */
  text: { property: string; of(i: number): string };
  /** A numeric property path for increment/decrement. */
  numeric?: string;
  /** Conflict paths for upsert. */
  conflict?: string[];
  softDelete?: boolean;
  /** Writes only this shape has (cascades, moving a subtree). */
  extra?: Array<{ name: string; run(ds: import('typeorm').DataSource): Promise<unknown> }>;
}

/** A snake_case naming strategy like the `typeorm-naming-strategies` package's. */
class SnakeNamingStrategy extends DefaultNamingStrategy implements NamingStrategyInterface {
  private snake(name: string) {
    return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  }
  override tableName(className: string, customName: string | undefined): string {
    return customName ?? this.snake(className);
  }
  override columnName(propertyName: string, customName: string | undefined, embeddedPrefixes: string[]): string {
    return this.snake(embeddedPrefixes.concat(customName ?? propertyName).join('_'));
  }
  override relationName(propertyName: string): string {
    return this.snake(propertyName);
  }
  override joinColumnName(relationName: string, referencedColumnName: string): string {
    return this.snake(`${relationName}_${referencedColumnName}`);
  }
}

const day = (i: number) => `2024-01-${String(10 + i).padStart(2, '0')}`;

/** The shapes, declared afresh for a dialect (column types differ: `datetime` is `timestamp` on PostgreSQL). */
export function defineShapes(dialect: Dialect): { marker: new () => object; shapes: Shape[] } {
  const datetime = dialect === 'postgres' ? 'timestamp' : 'datetime';
  const json = 'json' as const;
  const enumType = dialect === 'sqlite' ? ('simple-enum' as const) : ('enum' as const);

  @Entity({ name: 'marker' })
  class Marker {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) label!: string;
    @Column({ type: 'varchar', length: 64 }) kind!: string;
  }

  // Renamed columns, a renamed generated primary key, a unique column for upserts.
  @Entity({ name: 'person' })
  class Person {
    @PrimaryGeneratedColumn({ type: 'integer', name: 'person_id' }) id!: number;
    @Column({ type: 'varchar', length: 64, name: 'first_name' }) firstName!: string;
    @Column({ type: 'varchar', length: 64, name: 'last_name' }) lastName!: string;
    @Column({ type: 'varchar', length: 128, name: 'email_address', unique: true }) email!: string;
    @Column({ type: 'integer', name: 'login_count', default: 0 }) logins!: number;
  }

  // Every name through a snake_case naming strategy, with an embedded value.
  class Address {
    @Column({ type: 'varchar', length: 64 }) streetName!: string;
    @Column({ type: 'varchar', length: 16 }) zipCode!: string;
  }
  @Entity()
  class UserAccount {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) displayName!: string;
    @Column({ type: 'varchar', length: 128, unique: true }) emailAddress!: string;
    @Column({ type: 'integer', default: 0 }) loginCount!: number;
    @Column(() => Address) homeAddress!: Address;
    @DeleteDateColumn({ type: datetime, nullable: true }) deactivatedAt!: Date | null;
  }

  // Embedded columns (countersLikes, countersViews), the unique one the conflict target of upserts.
  class Counters {
    @Column({ type: 'integer', default: 0 }) likes!: number;
    @Column({ type: 'integer', default: 0, unique: true }) views!: number;
  }
  @Entity({ name: 'post' })
  class Post {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) title!: string;
    @Column(() => Counters) counters!: Counters;
  }

  // An embedded composite primary key (keySlug, keyLocale).
  class TranslationKey {
    @PrimaryColumn({ type: 'varchar', length: 32 }) slug!: string;
    @PrimaryColumn({ type: 'varchar', length: 8 }) locale!: string;
  }
  @Entity({ name: 'translation' })
  class Translation {
    @Column(() => TranslationKey) key!: TranslationKey;
    @Column({ type: 'varchar', length: 255 }) body!: string;
    @Column({ type: 'integer', default: 0 }) revision!: number;
  }

  // A composite primary key, one part renamed.
  @Entity({ name: 'membership' })
  class Membership {
    @PrimaryColumn({ type: 'varchar', length: 16, name: 'team_code' }) teamCode!: string;
    @PrimaryColumn({ type: 'integer' }) userId!: number;
    @Column({ type: 'varchar', length: 32 }) role!: string;
    @Column({ type: 'integer', default: 0 }) score!: number;
  }

  // A natural primary key stored under another name.
  @Entity({ name: 'country' })
  class Country {
    @PrimaryColumn({ type: 'varchar', length: 8, name: 'iso_code' }) code!: string;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @Column({ type: 'integer', default: 0 }) population!: number;
  }

  // Relations: a renamed join column, @RelationId, cascades both ways; a renamed soft-delete column.
  @Entity({ name: 'category' })
  class Category {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @OneToMany(() => Article, (article) => article.category, { cascade: true }) articles?: Article[];
  }
  @Entity({ name: 'article' })
  class Article {
    @PrimaryGeneratedColumn({ type: 'integer', name: 'article_id' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) title!: string;
    @Column({ type: 'integer', default: 0 }) reads!: number;
    @Column({ type: 'varchar', length: 16, nullable: true, unique: true }) code!: string | null;
    @DeleteDateColumn({ type: datetime, nullable: true, name: 'gone_at' }) goneAt!: Date | null;
    @ManyToOne(() => Category, (category) => category.articles, { nullable: true })
    @JoinColumn({ name: 'category_ref' })
    category?: Category | null;
    @RelationId((article: Article) => article.category) categoryId?: number | null;
  }

  // A materialized-path tree.
  @Entity({ name: 'folder' })
  @Tree('materialized-path')
  class Folder {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @Column({ type: 'integer', default: 0 }) size!: number;
    @Column({ type: 'varchar', length: 16, unique: true }) slug!: string;
    @TreeParent() parent?: Folder | null;
    @TreeChildren() children?: Folder[];
  }

  // Single-table inheritance: cars and bikes share a table (and names); writes through Car must leave bikes alone.
  @Entity({ name: 'vehicle' })
  @TableInheritance({ column: { type: 'varchar', name: 'kind', length: 16 } })
  class Vehicle {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
    @Column({ type: 'integer', default: 0 }) wheels!: number;
    @Column({ type: 'varchar', length: 16, unique: true }) plate!: string;
  }
  @ChildEntity('car')
  class Car extends Vehicle {
    @Column({ type: 'integer', nullable: true }) doors!: number | null;
  }
  @ChildEntity('bike')
  class Bike extends Vehicle {
    @Column({ type: 'integer', nullable: true }) gears!: number | null;
  }

  // Many-to-many: junction tables TypeORM writes itself, one named by default (question_tags_tag: questionId,
  // tagId), one self-referencing with renamed join columns (question_link: from_id, to_id).
  @Entity({ name: 'tag' })
  class Tag {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) name!: string;
  }
  @Entity({ name: 'question' })
  class Question {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 16, unique: true }) slug!: string;
    @Column({ type: 'varchar', length: 64 }) title!: string;
    @Column({ type: 'integer', default: 0 }) votes!: number;
    @ManyToMany(() => Tag) @JoinTable() tags?: Tag[];
    @ManyToMany(() => Question)
    @JoinTable({ name: 'question_link', joinColumn: { name: 'from_id' }, inverseJoinColumn: { name: 'to_id' } })
    related?: Question[];
  }

  // Soft delete, version and date columns.
  @Entity({ name: 'document' })
  class Document {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) title!: string;
    @Column({ type: 'varchar', length: 16, unique: true }) code!: string;
    @Column({ type: 'integer', default: 0 }) edits!: number;
    @VersionColumn({ type: 'integer' }) version!: number;
    @CreateDateColumn({ type: datetime }) createdAt!: Date;
    @UpdateDateColumn({ type: datetime }) updatedAt!: Date;
    @DeleteDateColumn({ type: datetime, nullable: true }) deletedAt!: Date | null;
  }

  // Values of every kind: JSON, simple-json, simple-array, enum, date, datetime, bigint, decimal, boolean.
  @Entity({ name: 'sample' })
  class Sample {
    @PrimaryGeneratedColumn({ type: 'integer' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) label!: string;
    @Column({ type: 'varchar', length: 16, unique: true }) code!: string;
    @Column({ type: 'simple-json', nullable: true }) settings!: { theme: string; sizes?: number[] } | null;
    @Column({ type: json, nullable: true }) payload!: { n: number; nested: { deep: boolean; list: Array<{ k: string }> } } | null;
    @Column({ type: 'simple-array' }) tags!: string[];
    @Column({ type: enumType, enum: ['draft', 'live', 'archived'], default: 'draft' }) status!: string;
    @Column({ type: 'date' }) day!: string;
    @Column({ type: datetime }) at!: Date;
    @Column({ type: 'bigint' }) big!: string;
    @Column({ type: 'decimal', precision: 10, scale: 2 }) price!: string;
    @Column({ type: 'boolean', default: false }) flag!: boolean;
  }

  const shapes: Shape[] = [
    {
      name: 'renamed columns',
      entities: [Person],
      target: Person,
      make: (i) => ({ firstName: `first${i}`, lastName: `last${i}`, email: `p${i}@x.io`, logins: i }),
      criteria: (i) => ({ firstName: `first${i}` }),
      change: (i) => ({ lastName: `changed${i}` }),
      where: { sql: 'firstName = :first AND logins >= :min', params: (i) => ({ first: `first${i}`, min: 0 }) },
      text: { property: 'firstName', of: (i) => `first${i}` },
      numeric: 'logins',
      conflict: ['email'],
      extra: [
        {
          name: 'query-builder update and delete through a repository alias',
          run: (ds) =>
            ds.transaction(async (manager) => {
              const repo = manager.getRepository(Person);
              const updated = await repo.createQueryBuilder('p').update().set({ lastName: 'aliased' }).where('firstName = :first', { first: 'first3' }).execute();
              const deleted = await repo.createQueryBuilder('p').delete().where('lastName = :last', { last: 'aliased' }).execute();
              return [updated, deleted];
            }),
        },
        {
          // TypeORM renders `p.firstName` as it is in an UPDATE, which the database rejects: it must fail alike.
          name: 'query-builder update with an alias-prefixed WHERE',
          run: (ds) => ds.getRepository(Person).createQueryBuilder('p').update().set({ lastName: 'x' }).where('p.firstName = :first', { first: 'first4' }).execute(),
        },
      ],
    },
    {
      name: 'snake-case naming strategy',
      entities: [UserAccount],
      target: UserAccount,
      namingStrategy: new SnakeNamingStrategy(),
      make: (i) => ({ displayName: `user${i}`, emailAddress: `u${i}@x.io`, loginCount: 0, homeAddress: { streetName: `street ${i}`, zipCode: `z${i}` } }),
      criteria: (i) => ({ homeAddress: { zipCode: `z${i}` } }),
      change: (i) => ({ displayName: `user${i}!`, homeAddress: { streetName: `moved ${i}` } }),
      where: { sql: 'homeAddress.zipCode = :zip', params: (i) => ({ zip: `z${i}` }) },
      // Not the email: a partial save() alters the text, and the upsert must find row 1 by its email.
      text: { property: 'displayName', of: (i) => `user${i}` },
      numeric: 'loginCount',
      conflict: ['emailAddress'],
      // Soft delete by an embedded column's criteria, into deactivated_at (a name only the naming strategy gives).
      softDelete: true,
    },
    {
      name: 'embedded columns',
      entities: [Post],
      target: Post,
      make: (i) => ({ title: `post${i}`, counters: { likes: 0, views: 100 + i } }),
      criteria: (i) => ({ counters: { views: 100 + i } }),
      change: (i) => ({ title: `post${i}!`, counters: { likes: 7 } }),
      where: { sql: 'counters.views = :views', params: (i) => ({ views: 100 + i }) },
      text: { property: 'title', of: (i) => `post${i}` },
      numeric: 'counters.likes',
      // On SQLite TypeORM merges the last inserted row's values into every value set of the upsert (its
      // driver reports one id), the conflict column's default included.
      conflict: ['counters.views'],
    },
    {
      name: 'embedded composite primary key',
      entities: [Translation],
      target: Translation,
      make: (i) => ({ key: { slug: `s${i}`, locale: 'en' }, body: `body ${i}`, revision: 0 }),
      criteria: (i) => ({ key: { slug: `s${i}`, locale: 'en' } }),
      change: (i) => ({ body: `body ${i}!` }),
      where: { sql: 'key.slug = :slug', params: (i) => ({ slug: `s${i}` }) },
      text: { property: 'body', of: (i) => `body ${i}` },
      numeric: 'revision',
      conflict: ['key.slug', 'key.locale'],
    },
    {
      name: 'composite primary key',
      entities: [Membership],
      target: Membership,
      make: (i) => ({ teamCode: `t${i % 3}`, userId: i, role: `role${i}`, score: 0 }),
      criteria: (i) => ({ teamCode: `t${i % 3}`, userId: i }),
      change: () => ({ role: 'admin' }),
      where: { sql: 'teamCode = :team AND userId = :user', params: (i) => ({ team: `t${i % 3}`, user: i }) },
      text: { property: 'role', of: (i) => `role${i}` },
      numeric: 'score',
      conflict: ['teamCode', 'userId'],
    },
    {
      name: 'primary column under another name',
      entities: [Country],
      target: Country,
      make: (i) => ({ code: `C${i}`, name: `country ${i}`, population: i * 1000 }),
      criteria: (i) => ({ code: `C${i}` }),
      change: (i) => ({ name: `country ${i}!` }),
      where: { sql: 'code = :code', params: (i) => ({ code: `C${i}` }) },
      text: { property: 'name', of: (i) => `country ${i}` },
      numeric: 'population',
      conflict: ['code'],
    },
    {
      name: 'relations: join columns, relation ids, cascades',
      entities: [Category, Article],
      target: Article,
      seed: [{ target: Category, rows: Array.from({ length: 12 }, (_, i) => ({ name: `cat${i + 1}` })) }],
      make: (i) => ({ title: `article${i}`, code: `a${i}`, category: { id: i } }),
      criteria: (i) => ({ category: { id: i } }),
      change: (i) => ({ title: `article${i}!`, category: { id: 12 - i } }),
      where: { sql: 'category.id = :cat', params: (i) => ({ cat: i }) },
      text: { property: 'title', of: (i) => `article${i}` },
      numeric: 'reads',
      conflict: ['code'],
      // Soft delete by a relation's criteria, into gone_at (a column named unlike its property).
      softDelete: true,
      extra: [
        {
          name: 'save() of a parent with new children (cascade insert)',
          run: (ds) => ds.getRepository(Category).save({ name: 'with children', articles: [{ title: 'child a' }, { title: 'child b' }] }),
        },
        {
          name: 'remove() of a parent and its loaded children (cascade remove)',
          run: async (ds) => {
            const repo = ds.getRepository(Category);
            return repo.remove(await repo.findOneOrFail({ where: { name: 'with children' }, relations: { articles: true } }));
          },
        },
        {
          // A subquery TypeORM builds (it escapes the table name): written by hand, the bare word `category`
          // is a relation's property name, which TypeORM rewrites to its join column (`category_ref`).
          name: 'query-builder update joined to another table by a subquery',
          run: (ds) =>
            ds
              .createQueryBuilder()
              .update(Article)
              .set({ reads: () => 'reads + 100' })
              .where(`category_ref IN ${ds.createQueryBuilder().subQuery().select('c.id').from(Category, 'c').where('c.name IN (:...names)').getQuery()}`)
              .setParameters({ names: ['cat1', 'cat11'] })
              .execute(),
        },
        {
          name: 'update by a relation criteria to NULL',
          run: (ds) => ds.getRepository(Article).update({ category: { id: 11 } }, { category: null }),
        },
        {
          name: 'query-builder delete joined to another table by a subquery',
          run: (ds) =>
            ds
              .createQueryBuilder()
              .delete()
              .from(Article)
              .where(`category_ref IN ${ds.createQueryBuilder().subQuery().select('c.id').from(Category, 'c').where('c.name IN (:...names)').getQuery()}`)
              .setParameters({ names: ['cat8', 'cat9'] })
              .execute(),
        },
        {
          // Raw SQL: the other table escaped (see above), the deleted one referred to by its table name (no alias in a DELETE).
          name: 'query-builder delete joined to another table by a correlated subquery',
          run: (ds) =>
            ds
              .createQueryBuilder()
              .delete()
              .from(Article)
              .where(`EXISTS (SELECT 1 FROM ${ds.driver.escape('category')} c WHERE c.id = article.category_ref AND c.name = :name)`, { name: 'cat5' })
              .execute(),
        },
      ],
    },
    {
      name: 'many-to-many: junction tables',
      entities: [Tag, Question],
      target: Question,
      seed: [{ target: Tag, rows: Array.from({ length: 12 }, (_, i) => ({ name: `tag${i + 1}` })) }],
      make: (i) => ({ slug: `q${i}`, title: `question${i}`, tags: [{ id: i }, { id: (i % 12) + 1 }] }),
      criteria: (i) => ({ slug: `q${i}` }),
      change: (i) => ({ title: `question${i}!`, votes: i }),
      where: { sql: 'slug = :slug', params: (i) => ({ slug: `q${i}` }) },
      text: { property: 'title', of: (i) => `question${i}` },
      numeric: 'votes',
      // An upsert writes the question's columns only: TypeORM leaves the junction table alone.
      conflict: ['slug'],
      extra: [
        {
          name: 'save() of a loaded entity with one link removed and one added',
          run: async (ds) => {
            const repo = ds.getRepository(Question);
            const question = await repo.findOneOrFail({ where: { slug: 'q3' }, relations: { tags: true } });
            question.tags = [...question.tags!.filter((tag) => tag.id !== 3), { id: 12 } as Tag];
            return repo.save(question);
          },
        },
        {
          name: 'save() that removes every link',
          run: async (ds) => ds.getRepository(Question).save({ ...(await ds.getRepository(Question).findOneByOrFail({ slug: 'q4' })), tags: [] }),
        },
        {
          name: 'relation query builder add() and remove() in one transaction',
          run: (ds) =>
            ds.transaction(async (manager) => {
              const { id } = await manager.getRepository(Question).findOneByOrFail({ slug: 'q5' });
              await manager.createQueryBuilder().relation(Question, 'tags').of(id).add([9, 10]);
              await manager.createQueryBuilder().relation(Question, 'tags').of(id).remove(5);
            }),
        },
        {
          name: 'save() linking questions to each other (self-referencing junction, renamed columns)',
          run: async (ds) => {
            const repo = ds.getRepository(Question);
            const [one, three, five] = await Promise.all(['q1', 'q3', 'q5'].map((slug) => repo.findOneByOrFail({ slug })));
            return repo.save([{ ...one!, related: [one!, three!] }, { ...three!, related: [one!] }, { ...five!, related: [five!] }]);
          },
        },
        {
          // Its own links TypeORM deletes; the link from question 1 to it the database deletes (ON DELETE CASCADE).
          name: 'remove() of a question linked from another question',
          run: async (ds) => ds.getRepository(Question).remove(await ds.getRepository(Question).findOneByOrFail({ slug: 'q3' })),
        },
        {
          // The link from question 5 to itself is TypeORM's to delete, though the database would delete it too.
          name: 'remove() of a question linked to itself',
          run: async (ds) => ds.getRepository(Question).remove(await ds.getRepository(Question).findOneByOrFail({ slug: 'q5' })),
        },
        {
          // The relation is declared on the question only: the database deletes the tag's links.
          name: 'remove() of a linked tag',
          run: async (ds) => ds.getRepository(Tag).remove(await ds.getRepository(Tag).findOneByOrFail({ name: 'tag1' })),
        },
        {
          name: 'query-builder delete of a linked tag',
          run: (ds) => ds.createQueryBuilder().delete().from(Tag).where('name = :name', { name: 'tag2' }).execute(),
        },
        {
          name: 'delete() by criteria of a question linked to itself',
          run: (ds) => ds.getRepository(Question).delete({ slug: 'q1' }),
        },
      ],
    },
    {
      name: 'tree (materialized path)',
      entities: [Folder],
      target: Folder,
      make: (i) => ({ name: `folder${i}`, slug: `f${i}`, size: i, parent: i === 1 ? null : { id: 1 } }),
      criteria: (i) => ({ name: `folder${i}` }),
      change: (i) => ({ size: 100 + i }),
      where: { sql: 'name = :name', params: (i) => ({ name: `folder${i}` }) },
      text: { property: 'name', of: (i) => `folder${i}` },
      numeric: 'size',
      // An upsert or insert is no save(): TypeORM leaves the new row's mpath empty (alike with and without auditing).
      conflict: ['slug'],
      extra: [
        {
          name: 'save() that moves a subtree',
          run: async (ds) => {
            const repo = ds.getRepository(Folder);
            const child = await repo.findOneOrFail({ where: { name: 'folder5' }, relations: { parent: true } });
            child.parent = await repo.findOneByOrFail({ name: 'folder3' });
            return repo.save(child);
          },
        },
      ],
    },
    {
      name: 'single-table inheritance',
      entities: [Vehicle, Car, Bike],
      target: Car,
      seed: [{ target: Bike, rows: Array.from({ length: 12 }, (_, i) => ({ name: `vehicle${i + 1}`, plate: `bike${i + 1}`, wheels: 2, gears: 21 })) }],
      make: (i) => ({ name: `vehicle${i}`, plate: `car${i}`, wheels: 4, doors: 5 }),
      criteria: (i) => ({ name: `vehicle${i}` }),
      change: () => ({ doors: 3, wheels: 6 }),
      where: { sql: 'name = :name', params: (i) => ({ name: `vehicle${i}` }) },
      text: { property: 'name', of: (i) => `vehicle${i}` },
      numeric: 'wheels',
      conflict: ['plate'],
    },
    {
      name: 'soft delete, version and date columns',
      entities: [Document],
      target: Document,
      softDelete: true,
      make: (i) => ({ title: `doc${i}`, code: `d${i}`, edits: 0 }),
      criteria: (i) => ({ title: `doc${i}` }),
      change: () => ({ edits: 1 }),
      where: { sql: 'title = :title', params: (i) => ({ title: `doc${i}` }) },
      text: { property: 'title', of: (i) => `doc${i}` },
      numeric: 'edits',
      conflict: ['code'],
    },
    {
      name: 'json, simple-json, simple-array, enum, date, bigint, decimal, boolean',
      entities: [Sample],
      target: Sample,
      make: (i) => ({
        label: `sample${i}`,
        code: `s${i}`,
        settings: { theme: 'light', sizes: [i, i + 1] },
        payload: { n: i, nested: { deep: true, list: [{ k: `a${i}` }, { k: 'b' }] } },
        tags: ['red', `t${i}`],
        status: 'draft',
        day: day(i),
        at: new Date(Date.UTC(2024, 0, i, 10, 30, 15)),
        big: String(9_000_000_000 + i),
        price: `${i}.50`,
        flag: false,
      }),
      criteria: (i) => ({ big: String(9_000_000_000 + i) }),
      change: (i) => ({
        settings: { theme: 'dark' },
        payload: { n: -i, nested: { deep: false, list: [] } },
        tags: ['blue'],
        status: 'live',
        day: day(i + 10),
        at: new Date(Date.UTC(2025, 5, i, 8, 0, 0)),
        price: '99.95',
        flag: true,
      }),
      where: { sql: 'label = :label AND flag = :flag', params: (i) => ({ label: `sample${i}`, flag: false }) },
      text: { property: 'label', of: (i) => `sample${i}` },
      // Not `big`: the criteria name rows by it, so a decrement after the increment would match nothing.
      numeric: 'price',
      conflict: ['code'],
      extra: [
        { name: 'increment() of a bigint column', run: (ds) => ds.getRepository(Sample).increment({ code: 's3' }, 'big', 7) },
      ],
    },
  ];
  return { marker: Marker, shapes };
}
