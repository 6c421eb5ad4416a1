import { Body, Controller, Post } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { Note } from './note.entity';

@Controller('notes')
export class NotesController {
  constructor(@InjectRepository(Note) private readonly notes: Repository<Note>) {}

  /** An ordinary save: auditql records it, attributed to whoever the middleware said is acting. */
  @Post()
  create(@Body() body: { text: string }): Promise<Note> {
    return this.notes.save(this.notes.create({ text: body.text }));
  }
}
