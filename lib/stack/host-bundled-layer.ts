/**
 * A Lambda layer whose content is copied together on the host (no Docker needed to synthesize) and
 * whose asset hash is given, not computed: versions identify the content, so unchanged binaries
 * are neither re-hashed on every synth nor re-uploaded.
 */
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface HostBundledLayerProps {
  description: string;
  /** Any existing directory: the asset's nominal source (the content comes from `bundle`). */
  sourceDir: string;
  /** Identifies the content: change it whenever `bundle` would write something else. */
  assetHash: string;
  /** Writes the layer's content into outputDir, or throws with a reason. */
  bundle: (outputDir: string) => void;
}

export function hostBundledLayer(scope: Construct, id: string, props: HostBundledLayerProps): lambda.LayerVersion {
  return new lambda.LayerVersion(scope, id, {
    description: props.description,
    // The Lambda's platform: these layers carry linux-x64 binaries for the Node.js 22 function.
    compatibleArchitectures: [lambda.Architecture.X86_64],
    compatibleRuntimes: [lambda.Runtime.NODEJS_22_X],
    code: lambda.Code.fromAsset(props.sourceDir, {
      assetHashType: AssetHashType.CUSTOM,
      assetHash: props.assetHash,
      bundling: {
        // Never used: local bundling always succeeds or throws with a reason.
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/busybox:stable'),
        local: {
          tryBundle(outputDir: string): boolean {
            props.bundle(outputDir);
            return true;
          },
        },
      },
    }),
  });
}
