//! Changing an instance's type: EC2 changes it only while the instance is stopped, so a resize
//! is stop, `ModifyInstanceAttribute` (`InstanceType`), start; one step per call, each chosen
//! from the instance as it is now.

use aws_sdk_ec2::types::{AttributeValue, InstanceStateName};
use vmapi_core::cloud::{CloudTarget, DriverError, ResizeProgress};

use super::driver::{is_terminated, AwsDriver, InstanceAction};
use super::errors::map_err;

impl AwsDriver {
    /// The next step of moving the VM's instance to `size` (running afterwards when
    /// `running`).
    pub(super) async fn resize_step(
        &self,
        target: &CloudTarget,
        size: &str,
        running: bool,
    ) -> Result<ResizeProgress, DriverError> {
        let instance = self
            .find(target)
            .await?
            .filter(|i| !is_terminated(i))
            .ok_or_else(|| DriverError::NotFound(format!("instance of VM {}", target.vm_id)))?;
        let id = instance.instance_id().unwrap_or_default().to_string();
        let state = instance.state().and_then(|s| s.name()).cloned();
        let sized = instance.instance_type().map(|t| t.as_str()) == Some(size);
        use InstanceStateName as S;
        match (sized, state) {
            // Between states: wait.
            (_, Some(S::Pending | S::Stopping | S::ShuttingDown)) => Ok(ResizeProgress::Waiting),
            (false, Some(S::Running)) => {
                self.instance_action(target, InstanceAction::Stop).await?;
                tracing::info!(vm = %target.vm_id, instance = %id, "EC2 instance stopped for a resize");
                Ok(ResizeProgress::Waiting)
            }
            (false, Some(S::Stopped)) => {
                self.client(&target.region)
                    .modify_instance_attribute()
                    .instance_id(&id)
                    .instance_type(AttributeValue::builder().value(size).build())
                    .send()
                    .await
                    .map_err(map_err)?;
                tracing::info!(vm = %target.vm_id, instance = %id, size, "EC2 instance type changed");
                if running {
                    self.instance_action(target, InstanceAction::Start).await?;
                    Ok(ResizeProgress::Waiting)
                } else {
                    Ok(ResizeProgress::Done)
                }
            }
            (true, Some(S::Stopped)) if running => {
                self.instance_action(target, InstanceAction::Start).await?;
                Ok(ResizeProgress::Waiting)
            }
            (true, Some(S::Running)) if !running => {
                self.instance_action(target, InstanceAction::Stop).await?;
                Ok(ResizeProgress::Waiting)
            }
            (true, Some(S::Running | S::Stopped)) => Ok(ResizeProgress::Done),
            (_, other) => Err(DriverError::Provider {
                code: "UnexpectedState".into(),
                message: format!(
                    "instance {id} is {} and cannot be resized",
                    other.map_or("in an unknown state".into(), |s| s.as_str().to_string())
                ),
            }),
        }
    }
}
