/**
 * The project's .proto files (proto/) against the protocol's (the shared reference: Triton's grpc_service.proto,
 * model_config.proto and health.proto, which KServe's open_inference_grpc.proto agrees with): every message, enum
 * and field the project declares has the reference's name, number, type, label and message type, every method of
 * the reference services is declared with the same path, streaming and message types. The project may leave out
 * fields (of messages it does not fill or methods it does not serve), never change one. Both sides are read through
 * @grpc/proto-loader's package definition (protobufjs descriptors), as a client would load them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import { repositoryRoot } from '../helpers/gantry-process.js';
import { referenceProtoFolder } from '../helpers/grpc-client.js';

const protoFiles = ['grpc_service.proto', 'health.proto'];
const referenceFolder = referenceProtoFolder();
const skip = referenceFolder === undefined ? "the protocol's reference protos (shared/reference/triton-protocol/grpc) are not on this machine" : false;

interface FieldDescriptor {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDescriptor {
  name: string;
  field: FieldDescriptor[];
  nestedType: MessageDescriptor[];
  enumType: EnumDescriptor[];
  oneofDecl: Array<{ name: string }>;
}
interface EnumDescriptor {
  name: string;
  value: Array<{ name: string; number: number }>;
}
type Definition = protoLoader.PackageDefinition;

function load(folder: string): Definition {
  return protoLoader.loadSync(protoFiles, { keepCase: true, includeDirs: [folder] });
}

function isMessage(entry: unknown): entry is protoLoader.MessageTypeDefinition<object, object> {
  return (entry as { format?: string }).format === 'Protocol Buffer 3 DescriptorProto';
}
function isEnum(entry: unknown): entry is protoLoader.EnumTypeDefinition {
  return (entry as { format?: string }).format === 'Protocol Buffer 3 EnumDescriptorProto';
}
function isService(entry: unknown): entry is protoLoader.ServiceDefinition {
  return !isMessage(entry) && !isEnum(entry);
}

/** Each problem as a line naming where it is. */
function compareEnums(where: string, ours: EnumDescriptor, theirs: EnumDescriptor, problems: string[]): void {
  for (const value of ours.value) {
    const reference = theirs.value.find((candidate) => candidate.name === value.name);
    if (reference === undefined) problems.push(`${where}: enum value ${value.name} is not in the reference`);
    else if (reference.number !== value.number) problems.push(`${where}.${value.name}: number ${value.number}, the reference's is ${reference.number}`);
  }
}

function compareMessages(where: string, ours: MessageDescriptor, theirs: MessageDescriptor, problems: string[]): void {
  for (const field of ours.field) {
    const reference = theirs.field.find((candidate) => candidate.name === field.name);
    if (reference === undefined) {
      problems.push(`${where}.${field.name}: not a field of the reference's ${where}`);
      continue;
    }
    for (const property of ['number', 'type', 'label', 'typeName'] as const) {
      if (field[property] !== reference[property])
        problems.push(`${where}.${field.name}: ${property} ${field[property]}, the reference's is ${reference[property]}`);
    }
  }
  // A oneof the project declares is the reference's, by name.
  for (const oneof of ours.oneofDecl) {
    if (!theirs.oneofDecl.some((candidate) => candidate.name === oneof.name)) problems.push(`${where}: oneof ${oneof.name} is not in the reference`);
  }
  for (const nested of ours.nestedType) {
    const reference = theirs.nestedType.find((candidate) => candidate.name === nested.name);
    if (reference === undefined) problems.push(`${where}.${nested.name}: no such nested message in the reference`);
    else compareMessages(`${where}.${nested.name}`, nested, reference, problems);
  }
  for (const nested of ours.enumType) {
    const reference = theirs.enumType.find((candidate) => candidate.name === nested.name);
    if (reference === undefined) problems.push(`${where}.${nested.name}: no such nested enum in the reference`);
    else compareEnums(`${where}.${nested.name}`, nested, reference, problems);
  }
}

test("every message, enum and field of proto/ is the reference protocol's (name, number, type, label, message type)", { skip }, () => {
  const ours = load(path.join(repositoryRoot, 'proto'));
  const theirs = load(referenceFolder!);
  const problems: string[] = [];
  let compared = 0;
  for (const [name, entry] of Object.entries(ours)) {
    const reference = theirs[name];
    if (reference === undefined) {
      problems.push(`${name}: not in the reference protos`);
      continue;
    }
    if (isMessage(entry)) {
      assert.ok(isMessage(reference), `${name} is a message in the reference too`);
      compareMessages(name, entry.type as unknown as MessageDescriptor, reference.type as unknown as MessageDescriptor, problems);
      compared++;
    } else if (isEnum(entry)) {
      assert.ok(isEnum(reference), `${name} is an enum in the reference too`);
      compareEnums(name, entry.type as unknown as EnumDescriptor, reference.type as unknown as EnumDescriptor, problems);
      compared++;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(compared > 40, `only ${compared} types compared`);
});

test("every method of the reference's services is declared, with the same path, streaming and message types", { skip }, () => {
  const ours = load(path.join(repositoryRoot, 'proto'));
  const theirs = load(referenceFolder!);
  const problems: string[] = [];
  const services = Object.entries(theirs).filter(([, entry]) => isService(entry));
  assert.deepEqual(services.map(([name]) => name).sort(), ['grpc.health.v1.Health', 'inference.GRPCInferenceService']);
  for (const [serviceName, service] of services) {
    const declared = ours[serviceName] as protoLoader.ServiceDefinition | undefined;
    if (declared === undefined) {
      problems.push(`${serviceName}: not declared`);
      continue;
    }
    for (const [methodName, method] of Object.entries(service as protoLoader.ServiceDefinition)) {
      const mine = declared[methodName];
      if (mine === undefined) {
        problems.push(`${serviceName}/${methodName}: not declared`);
        continue;
      }
      const shape = (definition: protoLoader.MethodDefinition<object, object>) => ({
        path: definition.path,
        requestStream: definition.requestStream,
        responseStream: definition.responseStream,
        requestType: (definition.requestType.type as unknown as MessageDescriptor).name,
        responseType: (definition.responseType.type as unknown as MessageDescriptor).name,
      });
      const wanted = shape(method);
      const got = shape(mine);
      if (JSON.stringify(got) !== JSON.stringify(wanted))
        problems.push(`${serviceName}/${methodName}: ${JSON.stringify(got)}, the reference's is ${JSON.stringify(wanted)}`);
    }
  }
  assert.deepEqual(problems, []);
});
