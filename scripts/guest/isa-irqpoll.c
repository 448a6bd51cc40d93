// SPDX-License-Identifier: GPL-2.0
/*
 * isa-irqpoll: delivers the interrupt of an ISA card that vm-nic serves behind a PCI
 * carrier function (1b36:00f0), for the vm-nic guest harness.
 *
 * Under TCG, QEMU's PCI proxy cannot inject the device's interrupt (its irqfd route exists
 * only with KVM), so the harness boots with `irqpoll`, which makes Linux call every
 * *shared* interrupt handler on each timer tick: enough for PCI drivers, which all
 * request their line shared. An ISA driver (ne.c) requests its line exclusive, and
 * irqpoll skips exclusive lines. This module stands in for the wire instead: on every
 * timer tick it reads the carrier's PCI status register, whose Interrupt Status bit
 * follows the card's interrupt output, and while that bit is set runs the handler of the
 * carrier's IRQ (the one the ISA driver was given). The handler runs through the
 * interrupt core (generic_handle_irq_safe), so a line the driver has disabled is left
 * pending and replayed when it is enabled, as for a real interrupt.
 *
 * insmod isa-irqpoll.ko   (after the ISA driver has requested the carrier's IRQ)
 */
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/jiffies.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/timer.h>

#define CARRIER_VENDOR 0x1b36
#define CARRIER_DEVICE 0x00f0

static struct pci_dev *carrier;
static struct timer_list tick;
static unsigned long delivered;
module_param(delivered, ulong, 0444);
MODULE_PARM_DESC(delivered, "interrupts delivered so far (read-only)");

static void poll_line(struct timer_list *unused)
{
	u16 status;

	if (pci_read_config_word(carrier, PCI_STATUS, &status) == 0 &&
	    (status & PCI_STATUS_INTERRUPT)) {
		generic_handle_irq_safe(carrier->irq);
		delivered++;
	}
	mod_timer(&tick, jiffies + 1);
}

static int __init isa_irqpoll_init(void)
{
	carrier = pci_get_device(CARRIER_VENDOR, CARRIER_DEVICE, NULL);
	if (!carrier)
		return -ENODEV;
	pr_info("isa-irqpoll: delivering %s's interrupt on IRQ %u\n", pci_name(carrier),
		carrier->irq);
	timer_setup(&tick, poll_line, 0);
	mod_timer(&tick, jiffies + 1);
	return 0;
}

static void __exit isa_irqpoll_exit(void)
{
	del_timer_sync(&tick);
	pci_dev_put(carrier);
}

module_init(isa_irqpoll_init);
module_exit(isa_irqpoll_exit);
MODULE_DESCRIPTION("vm-nic guest harness: deliver an ISA card's interrupt from its PCI carrier");
MODULE_LICENSE("GPL");
