/** Facts about the machine and the software under test, for the report (and nvidia-smi's view after the run). */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repositoryRoot } from '../../support/gantry-process.js';
import type { GpuCheckOptions } from './options.js';

/** A command's output (stdout and stderr, or its error); undefined when the command does not exist. */
function runCommand(command: string, args: string[], timeoutMs = 15_000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') resolve(undefined);
      else resolve(`${stdout}${stderr}`.trim() || (error ? String(error.message) : ''));
    });
  });
}

function installedVersion(packagePath: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repositoryRoot, 'node_modules', packagePath, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** The report's environment section, as Markdown bullet lines. */
export async function environmentFacts(options: GpuCheckOptions): Promise<string[]> {
  const query = await runCommand('nvidia-smi', ['--query-gpu=name,driver_version,memory.total,compute_cap', '--format=csv,noheader']);
  const banner = await runCommand('nvidia-smi', []);
  const cudaLine = banner?.split('\n').find((line) => line.includes('CUDA Version'));
  const ortBin = path.join(repositoryRoot, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
  const cpus = os.cpus();
  const lines = [
    `- GPU (nvidia-smi name, driver, memory, compute capability): ${query === undefined ? 'nvidia-smi not found' : `\`${query.replace(/\n/g, '; ')}\``}`,
    ...(cudaLine ? [`- nvidia-smi banner: \`${cudaLine.replace(/[|]/g, ' ').replace(/\s+/g, ' ').trim()}\``] : []),
    `- node ${process.version}, onnxruntime-node ${installedVersion('onnxruntime-node')} (onnxruntime-common ${installedVersion('onnxruntime-common')})`,
    `- CUDA provider library next to libonnxruntime: ${existsSync(path.join(ortBin, 'libonnxruntime_providers_cuda.so')) ? 'present' : 'absent'}`,
    `- CPU: ${cpus.length} × ${cpus[0]?.model ?? 'unknown'}; memory ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB; ${os.platform()} ${os.release()}`,
    `- Redis: ${options.redisUrl.replace(/\/\/[^@]*@/, '//…@')}`,
    `- options: requests ${options.requestCount}, throughput ${options.throughputSeconds} s at ${options.connections} connections${options.quick ? ', quick' : ''}`,
  ];
  if (process.env.LD_LIBRARY_PATH) lines.push(`- LD_LIBRARY_PATH: \`${process.env.LD_LIBRARY_PATH}\``);
  return lines;
}

/** nvidia-smi's memory, utilization, temperature and power once the work is done, as a report note. */
export async function gpuUsageNote(): Promise<string | undefined> {
  const usage = await runCommand('nvidia-smi', ['--query-gpu=memory.used,utilization.gpu,temperature.gpu,power.draw', '--format=csv,noheader']);
  return usage === undefined ? undefined : `nvidia-smi after the run (memory used, utilization, temperature, power): \`${usage.replace(/\n/g, '; ')}\``;
}
